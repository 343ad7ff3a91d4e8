import { EnvError } from "@tracelane/runtime";
import { describe, expect, it } from "vitest";
import { configFromEnv, loadEnv } from "../src/env.js";

const failure = (source: Record<string, string>) => {
  try {
    loadEnv(source);
  } catch (err) {
    if (err instanceof EnvError) return err.message;
    throw err;
  }
  throw new Error("expected loadEnv to fail");
};

describe("environment", () => {
  it("runs locally with no variables set", () => {
    const env = loadEnv({});
    expect(env).toMatchObject({ PORT: 4010, HOST: "0.0.0.0", LLM_SIM_API_KEY: "sk-simulator" });
    expect(configFromEnv(env)).toEqual({
      apiKey: "sk-simulator",
      latency: { baseMs: 0, jitterMs: 0, models: {} },
      faultRate: 0,
      faultKinds: ["429", "500", "503"],
      retryAfterS: 1,
      contextLimits: {},
      completionTokens: { min: 120, max: 400 },
      seed: undefined,
      directives: false,
    });
  });

  it("reads every variable", () => {
    const config = configFromEnv(
      loadEnv({
        LLM_SIM_API_KEY: "sk-other",
        LLM_SIM_LATENCY_MS: "100",
        LLM_SIM_JITTER_MS: "20",
        LLM_SIM_MODEL_LATENCY: '{"gpt-4.1":{"baseMs":800,"jitterMs":400}}',
        LLM_SIM_FAULT_RATE: "0.25",
        LLM_SIM_FAULT_KINDS: "hang, malformed",
        LLM_SIM_RETRY_AFTER_S: "2",
        LLM_SIM_CONTEXT_LIMITS: '{"gpt-4.1":2000}',
        LLM_SIM_MIN_TOKENS: "10",
        LLM_SIM_MAX_TOKENS: "20",
        LLM_SIM_SEED: "7",
        LLM_SIM_DIRECTIVES: "true",
      }),
    );
    expect(config).toEqual({
      apiKey: "sk-other",
      latency: { baseMs: 100, jitterMs: 20, models: { "gpt-4.1": { baseMs: 800, jitterMs: 400 } } },
      faultRate: 0.25,
      faultKinds: ["hang", "malformed"],
      retryAfterS: 2,
      contextLimits: { "gpt-4.1": 2000 },
      completionTokens: { min: 10, max: 20 },
      seed: 7,
      directives: true,
    });
  });

  it("accepts any key when LLM_SIM_API_KEY is *, and reads a blank value as unset", () => {
    expect(loadEnv({ LLM_SIM_API_KEY: "*" }).LLM_SIM_API_KEY).toBeUndefined();
    expect(loadEnv({ LLM_SIM_API_KEY: "" }).LLM_SIM_API_KEY).toBe("sk-simulator");
  });

  it("fails naming each bad variable", () => {
    const message = failure({
      PORT: "http",
      LLM_SIM_FAULT_RATE: "1.5",
      LLM_SIM_FAULT_KINDS: "429,teapot",
      LLM_SIM_CONTEXT_LIMITS: "{nope",
    });
    expect(message).toMatch(/PORT:/);
    expect(message).toMatch(/LLM_SIM_FAULT_RATE:/);
    expect(message).toMatch(/LLM_SIM_FAULT_KINDS: unknown fault kind teapot/);
    expect(message).toMatch(/LLM_SIM_CONTEXT_LIMITS: must be JSON/);
  });

  it("names the field of a JSON variable with the wrong shape", () => {
    expect(failure({ LLM_SIM_MODEL_LATENCY: '{"gpt-4.1":{"baseMs":-1}}' })).toMatch(/LLM_SIM_MODEL_LATENCY\.gpt-4\.1\.baseMs/);
  });

  it("checks the completion length range", () => {
    expect(failure({ LLM_SIM_MIN_TOKENS: "50", LLM_SIM_MAX_TOKENS: "10" })).toMatch(
      /LLM_SIM_MAX_TOKENS: must be at least LLM_SIM_MIN_TOKENS/,
    );
  });
});
