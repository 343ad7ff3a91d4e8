import { randomBytes, randomUUID } from "node:crypto";
import { modelCallsOfResearch, spansOfResearch } from "../support/spans.js";
import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import type { RedisClient } from "@tracelane/runtime";
import { createRedis } from "@tracelane/runtime";
import { SPAN_STREAM_SHARDS_DEFAULT, spanStreamShards } from "@tracelane/tracing";
import { apiClient, type ApiClient } from "../support/api-client.js";
import { dumpKeys, waitForCollectedTrace } from "../support/collected-traces.js";
import { startPipeline } from "../support/pipeline-stack.js";

// A key no code path could produce by accident: if it shows up anywhere, it was copied there.
const CANARY = `sk-canary-${randomBytes(12).toString("hex")}`;
const ANOMALY_STREAM = `e2e-anomalies-${randomUUID().slice(0, 8)}`;

const redisUrl = inject("redisUrl");
let stack: Awaited<ReturnType<typeof startPipeline>>;
let api: ApiClient;
let redis: RedisClient;

beforeAll(async () => {
  redis = createRedis(redisUrl, "producer");
  stack = await startPipeline(redisUrl, {
    replicas: { "llm-simulator": 1, "trace-collector": 1, api: 1, "analysis-worker": 1, "factcheck-worker": 1, "synthesis-worker": 1 },
    env: {
      // Every worker sends the canary; the simulator accepts nothing else.
      LLM_API_KEY: CANARY,
      LLM_SIM_API_KEY: CANARY,
      LOG_LEVEL: "debug",
      // Prompts and completions in spans, unredacted: the key still must not be among them.
      TRACELANE_CAPTURE_CONTENT: "full",
      TRACELANE_ANOMALY_STREAM: ANOMALY_STREAM,
      COLLECTOR_BLOCK_MS: "100",
    },
  });
  api = apiClient(stack.apiUrl!);
});

afterAll(async () => {
  await stack?.stop();
  if (stack) {
    const keys = [...(await redis.keys(`${stack.prefixes.queue}:*`)), ANOMALY_STREAM];
    await redis.del(...keys);
  }
  redis?.disconnect();
});

describe("API keys never reach logs or the collector's traces", () => {
  it("keeps the provider API key out of every process's output, trace, job, record, response and the environment of services that call no model, with faults and full capture", async () => {
    const ok = await api.submit({ query: "How fast is sea level rising? Cite the measurements." });
    const rejected = await api.submit({ query: "How fast is sea level rising? [[sim:fault=401;model=gpt-4.1]]" });
    // Retried faults: the provider's 429 and 500 answers go through the retry and error paths.
    const retried = await api.submit({
      query: "Why do leaves change colour? [[sim:fault=429;times=1]] [[sim:fault=500;model=gemini-2.5-flash;times=1]]",
    });
    expect([ok.status, rejected.status, retried.status]).toEqual([202, 202, 202]);
    expect((await api.waitForFinal(retried.body.id)).status).toBe("completed");

    const okView = await api.waitForFinal(ok.body.id);
    expect(okView.status, JSON.stringify(okView.error)).toBe("completed"); // the workers did send the canary
    const rejectedView = await api.waitForFinal(rejected.body.id);
    expect(rejectedView.status).toBe("failed");
    expect(rejectedView.error).toMatchObject({ stage: "analysis", type: "provider_auth" });

    // The collector assembled both traces under the trace ids the api answered with.
    const okTrace = await waitForCollectedTrace(stack.apiUrl!, ok.body.traceId, spansOfResearch(okView));
    expect(okTrace.body.summary.traceId).toBe(ok.body.traceId);
    expect(okTrace.body.summary.researchId).toBe(ok.body.id);
    const chats = okTrace.spans.filter((s) => s.kind === "client" && s.name.startsWith("chat "));
    const claimCalls = modelCallsOfResearch(okView) - 2;
    expect(chats.map((s) => `${s.stage} ${s.name}`).sort()).toEqual([
      "analysis chat gpt-4.1",
      ...Array<string>(claimCalls).fill("factcheck chat gemini-2.5-flash"),
      "synthesis chat deepseek-v3.2",
    ]);
    // The evidence search went to the simulator with the key too: its spans carry none of it either.
    expect(okTrace.spans.filter((s) => s.name === "execute_tool search_evidence").length).toBeGreaterThan(0);
    for (const chat of chats) expect(chat.call?.inputTokens).toBeGreaterThan(0);

    // SERVER, PRODUCER, CONSUMER, the stage's agent, chat and its one HTTP attempt: an auth failure is not retried.
    const rejectedTrace = await waitForCollectedTrace(stack.apiUrl!, rejected.body.traceId, 6);
    expect(rejectedTrace.body.summary.spanCount).toBe(6);
    expect(rejectedTrace.body.summary.status).toBe("error");
    const failedChat = rejectedTrace.spans.find((s) => s.name === "chat gpt-4.1");
    expect(failedChat?.status).toBe("error");

    // The failure was logged once, by the worker, with the message that says what to fix...
    const analysisOutput = stack.byService("analysis-worker")[0]!.output();
    expect(analysisOutput).toMatch(/"msg":"job failed"/);
    expect(analysisOutput).toMatch(/rejected the API key/);

    // ...and the key is nowhere: not in any process's stdout/stderr (debug level)...
    await new Promise((r) => setTimeout(r, 200)); // let the last lines reach the pipes
    expect(stack.processes.map((p) => p.name).sort()).toEqual([
      "analysis-worker#1",
      "api#1",
      "factcheck-worker#1",
      "llm-simulator#1",
      "synthesis-worker#1",
      "trace-collector#1",
    ]);
    for (const proc of stack.processes) {
      expect(proc.output(), `${proc.name} printed the API key`).not.toContain(CANARY);
      expect(proc.output(), `${proc.name} printed part of the API key`).not.toContain(CANARY.slice("sk-canary-".length, -4));
    }
    // ...nor in what the api serves about the traces...
    for (const trace of [okTrace, rejectedTrace]) {
      expect(trace.text).not.toContain(CANARY);
      const replay = await (await fetch(`${stack.apiUrl}/v1/traces/${trace.body.summary.traceId}/replay`)).text();
      expect(replay.length).toBeGreaterThan(0);
      expect(replay).not.toContain(CANARY);
    }
    // ...nor anywhere in the collector's store, the span stream or the anomaly stream.
    const stored = await dumpKeys(redis, `${stack.prefixes.traces}:*`);
    expect(stored).toContain(ok.body.traceId);
    expect(stored).not.toContain(CANARY);
    for (const shard of spanStreamShards(stack.prefixes.spans, SPAN_STREAM_SHARDS_DEFAULT)) {
      expect(await dumpKeys(redis, shard)).not.toContain(CANARY);
    }
    expect(await dumpKeys(redis, ANOMALY_STREAM)).not.toContain(CANARY);
    // Every Redis value of this run: job payloads and results, research records, events, indexes.
    const everything = await dumpKeys(redis, `${stack.prefixes.queue}*`);
    expect(everything).toContain(ok.body.id);
    expect(everything).toContain("Cite the measurements"); // the prompt is there (full capture), the key is not
    expect(everything).not.toContain(CANARY);

    // Every api response a user reads: statuses, events, lists, traces, stats.
    const reads = [
      ...[ok, rejected, retried].flatMap(({ body }) => [
        `/v1/research/${body.id}`,
        `/v1/research/${body.id}/events`,
        `/v1/traces/${body.traceId}`,
      ]),
      "/v1/research",
      "/v1/traces?kind=all",
      "/v1/anomalies",
      "/v1/stats/costs?kind=all",
      "/metrics",
    ];
    for (const path of reads) {
      const res = await fetch(`${stack.apiUrl}${path}`);
      expect(res.status, path).toBe(200);
      expect(await res.text(), path).not.toContain(CANARY);
    }

    // The processes that never call the model were never given the key.
    for (const name of ["api", "trace-collector"] as const) {
      const environ = readFileSync(`/proc/${stack.byService(name)[0]!.child.pid}/environ`, "utf8");
      expect(environ, `${name}'s environment`).not.toContain(CANARY);
    }
  });
});
