import { describe, expect, it } from "vitest";
import { EnvError } from "@tracelane/runtime";
import { loadStageConfig } from "@tracelane/stage-runner";

describe("stage worker config", () => {
  it("defaults to the local simulator and the stage's default model", () => {
    const c = loadStageConfig("factcheck", {});
    expect(c.llm.baseURL).toBe("http://127.0.0.1:4010/v1");
    expect(c.llm.model).toBe("gemini-2.5-flash");
  });

  it("uses one provider for all stages, overridable per stage", () => {
    const env = {
      LLM_BASE_URL: "https://api.example.com/v1",
      LLM_API_KEY: "shared",
      SYNTHESIS_LLM_BASE_URL: "https://api.deepseek.example/v1",
      SYNTHESIS_LLM_API_KEY: "ds",
      SYNTHESIS_MODEL: "deepseek-reasoner",
    };
    const analysis = loadStageConfig("analysis", env);
    const synthesis = loadStageConfig("synthesis", env);
    expect(analysis.llm).toMatchObject({ baseURL: "https://api.example.com/v1", apiKey: "shared", apiKeyVar: "LLM_API_KEY" });
    expect(synthesis.llm).toMatchObject({
      baseURL: "https://api.deepseek.example/v1",
      apiKey: "ds",
      apiKeyVar: "SYNTHESIS_LLM_API_KEY",
      model: "deepseek-reasoner",
    });
  });

  it("fails at boot naming a bad variable", () => {
    expect(() => loadStageConfig("analysis", { WORKER_CONCURRENCY: "lots" })).toThrow(EnvError);
    expect(() => loadStageConfig("analysis", { ANALYSIS_LLM_BASE_URL: "not a url" })).toThrow(/ANALYSIS_LLM_BASE_URL/);
  });

  it("reads the stage's fallback model and the circuit-open wait bound, refusing a fallback that is the model itself", () => {
    const c = loadStageConfig("factcheck", { FACTCHECK_FALLBACK_MODEL: "gemini-2.5-flash-lite", CIRCUIT_OPEN_MAX_WAIT_MS: "60000" });
    expect(c.llm.fallbackModel).toBe("gemini-2.5-flash-lite");
    expect(c.circuitOpenMaxWaitMs).toBe(60_000);
    expect(loadStageConfig("factcheck", {}).circuitOpenMaxWaitMs).toBe(300_000);
    expect(() => loadStageConfig("factcheck", { FACTCHECK_FALLBACK_MODEL: "gemini-2.5-flash" })).toThrow(
      /FACTCHECK_FALLBACK_MODEL: must name another model than FACTCHECK_MODEL .*\(got "gemini-2.5-flash"\)/,
    );
    expect(() => loadStageConfig("factcheck", { CIRCUIT_OPEN_MAX_WAIT_MS: "soon" })).toThrow(/CIRCUIT_OPEN_MAX_WAIT_MS/);
  });
});
