import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { pipelineTrace, toOtlpJson } from "@tracelane/trace-collector/testing";
import { startPipeline } from "../support/pipeline-stack.js";
import { environOf } from "./support/processes.js";

// The api's key list, as an operator sets it for the whole stack: only the api and the collector may receive it.
const KEY = "collector-canary-key-5b8d2e7f01";

let stack: Awaited<ReturnType<typeof startPipeline>>;

beforeAll(async () => {
  stack = await startPipeline(inject("redisUrl"), {
    replicas: { "trace-collector": 1, "llm-simulator": 1, "analysis-worker": 1 },
    env: { API_KEYS: `${KEY} ops admin` },
  });
}, 90_000);
afterAll(async () => {
  await stack?.stop();
});

const post = (headers: Record<string, string> = {}) =>
  fetch(`${stack.collectorUrl}/v1/traces`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: toOtlpJson(pipelineTrace({ startMs: Date.now() - 5_000 })),
  });

describe("the collector process with API_KEYS from the launcher", () => {
  it("is the one of these services that receives API_KEYS (a worker and the simulator do not)", () => {
    const keyed = (name: Parameters<typeof stack.byService>[0]) =>
      Object.entries(environOf(stack.byService(name)[0]!.child.pid!))
        .filter(([, v]) => v.includes(KEY))
        .map(([k]) => k);
    expect(keyed("trace-collector")).toEqual(["API_KEYS"]);
    expect(keyed("analysis-worker")).toEqual([]);
    expect(keyed("llm-simulator")).toEqual([]);
  });

  it("answers POST /v1/traces 401 without the key and 200 with it, health open either way", async () => {
    expect((await post()).status).toBe(401);
    expect((await post({ authorization: "Bearer some-other-key-123456" })).status).toBe(401);
    expect((await post({ authorization: `Bearer ${KEY}` })).status).toBe(200);
    expect((await fetch(`${stack.collectorUrl}/healthz`)).status).toBe(200);
    expect((await fetch(`${stack.collectorUrl}/metrics`)).status).toBe(200);
  });
});
