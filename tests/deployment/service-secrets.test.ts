import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { ONE_OF_EACH } from "@tracelane/launcher";
import { apiClient } from "../support/api-client.js";
import { startPipeline } from "../support/pipeline-stack.js";
import { environOf } from "./support/processes.js";

// One key for the simulator and every worker, so the research can only complete if each worker got it.
const CANARY = "sk-canary-7f3e9a1c-secrets";

let stack: Awaited<ReturnType<typeof startPipeline>>;

beforeAll(async () => {
  stack = await startPipeline(inject("redisUrl"), {
    replicas: ONE_OF_EACH,
    env: { LLM_API_KEY: CANARY, LLM_SIM_API_KEY: CANARY, ANALYSIS_LLM_API_KEY: CANARY, OPENAI_API_KEY: CANARY },
  });
}, 90_000);
afterAll(async () => {
  await stack?.stop();
});

describe("each service gets only the secrets it uses", () => {
  it("gives the api and the collector no provider key, each worker only the shared one and its own stage's", async () => {
    const api = apiClient(stack.apiUrl!);
    const { body } = await api.submit({ query: "Which services hold the provider key?" });
    expect((await api.waitForFinal(body.id, 30_000)).status).toBe("completed");

    const keysOf = (name: Parameters<typeof stack.byService>[0]) =>
      Object.entries(environOf(stack.byService(name)[0]!.child.pid!))
        .filter(([, v]) => v.includes(CANARY))
        .map(([k]) => k)
        .sort();
    expect(keysOf("api")).toEqual([]);
    expect(keysOf("trace-collector")).toEqual([]);
    expect(keysOf("llm-simulator")).toEqual(["LLM_SIM_API_KEY"]);
    expect(keysOf("analysis-worker")).toEqual(["ANALYSIS_LLM_API_KEY", "LLM_API_KEY"]);
    expect(keysOf("factcheck-worker")).toEqual(["LLM_API_KEY"]);
    expect(keysOf("synthesis-worker")).toEqual(["LLM_API_KEY"]);
  });
});
