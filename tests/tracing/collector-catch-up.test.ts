import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import type { RedisClient } from "@tracelane/runtime";
import { createRedis } from "@tracelane/runtime";
import { waitFor, type ServiceProcess } from "@tracelane/testkit";
import { SPAN_STREAM_SHARDS_DEFAULT, spanStreamShards } from "@tracelane/tracing";
import { apiClient } from "../support/api-client.js";
import { fetchTrace, readSpanStream, spawnCollector, waitForCollectedTrace, type StreamSpan } from "../support/collected-traces.js";
import { startPipeline } from "../support/pipeline-stack.js";
import { modelCallsOfResearch, spansOfResearch } from "../support/spans.js";
import type { ResearchView } from "@tracelane/research-store";

/**
 * Every span a completed research writes, as `service: name` (sorted): analysis and synthesis hand off, run their
 * agent and make one model call each; the fact-check's own job fans out and fans in (two visits), and each of
 * its claim jobs runs an agent with its model turns and tool runs, every one with its HTTP request.
 */
function spansWritten(view: ResearchView): string[] {
  const factcheck = (name: string, times = 1) => Array.from({ length: times }, () => `factcheck-worker: ${name}`);
  const claims = view.stages.factcheck.claims ?? [];
  return [
    "api: POST /v1/research",
    "api: publish research-analysis",
    "analysis-worker: process research-analysis",
    "analysis-worker: invoke_agent analysis",
    "analysis-worker: chat gpt-4.1",
    "analysis-worker: POST",
    "analysis-worker: publish research-factcheck",
    ...factcheck("process research-factcheck", 2),
    ...factcheck("invoke_agent factcheck", 2),
    ...factcheck("publish research-factcheck", claims.length),
    ...claims.flatMap((c) => [
      ...factcheck("process research-factcheck"),
      ...factcheck("invoke_agent factcheck"),
      ...factcheck("chat gemini-2.5-flash", c.modelCalls ?? 0),
      ...factcheck("execute_tool search_evidence", c.toolCalls ?? 0),
      ...factcheck("POST", (c.modelCalls ?? 0) + (c.toolCalls ?? 0)),
    ]),
    "factcheck-worker: publish research-synthesis",
    "synthesis-worker: process research-synthesis",
    "synthesis-worker: invoke_agent synthesis",
    "synthesis-worker: chat deepseek-v3.2",
    "synthesis-worker: POST",
  ].sort();
}

const redisUrl = inject("redisUrl");
let stack: Awaited<ReturnType<typeof startPipeline>>;
let collector: ServiceProcess | undefined;
let redis: RedisClient;

beforeAll(async () => {
  redis = createRedis(redisUrl, "producer");
  // Everything but the collector: the services write their spans to the stream, nobody reads it yet.
  stack = await startPipeline(redisUrl, {
    replicas: { "llm-simulator": 1, api: 1, "analysis-worker": 1, "factcheck-worker": 1, "synthesis-worker": 1 },
  });
});

afterAll(async () => {
  await collector?.stop("SIGTERM");
  await stack?.stop();
  if (stack) {
    const keys = await redis.keys(`${stack.prefixes.queue}:*`);
    if (keys.length > 0) await redis.del(...keys);
  }
  redis?.disconnect();
});

describe("the Redis span path", () => {
  it("assembles every span written while the collector was stopped, once it starts", async () => {
    const api = apiClient(stack.apiUrl!);
    const submitted = await api.submit({ query: "How much lithium does a grid-scale battery need?" });
    expect(submitted.status).toBe(202);
    const { id, traceId } = submitted.body;
    const view = await api.waitForFinal(id);
    expect(view.status, JSON.stringify(view.error)).toBe("completed");
    expect(view.stages.factcheck.claims?.length).toBeGreaterThanOrEqual(1);
    expect(view.stages.factcheck.claims!.every((c) => c.status === "checked")).toBe(true);
    const expected = spansWritten(view);
    expect(expected).toHaveLength(spansOfResearch(view));

    // Every process has exported its part of the trace to the stream, and nothing has read it.
    const inStream = async () => (await readSpanStream(redis, stack.prefixes.spans)).spans.filter((s) => s.traceId === traceId);
    await waitFor(async () => (await inStream()).length >= expected.length, {
      timeoutMs: 10_000,
      what: "the trace's spans in the stream",
    });
    await new Promise((r) => setTimeout(r, 300)); // a span too many would arrive by now
    const written = await inStream();
    expect(written.map((s) => `${s.service}: ${s.name}`).sort()).toEqual(expected);
    // No group on any shard the services wrote to (a shard no span went to does not exist yet).
    for (const shard of spanStreamShards(stack.prefixes.spans, SPAN_STREAM_SHARDS_DEFAULT)) {
      if (await redis.exists(shard)) expect(await redis.xinfo("GROUPS", shard)).toEqual([]);
    }
    expect(await fetchTrace(stack.apiUrl!, traceId)).toBeUndefined();

    collector = await spawnCollector({
      REDIS_URL: redisUrl,
      TRACELANE_SPAN_STREAM: stack.prefixes.spans,
      TRACELANE_TRACE_PREFIX: stack.prefixes.traces,
      TRACELANE_ANOMALY_STREAM: `${stack.prefixes.queue}:anomalies`,
      COLLECTOR_BLOCK_MS: "100",
      LOG_LEVEL: "warn",
    });

    const assembled = await waitForCollectedTrace(stack.apiUrl!, traceId, expected.length);
    const { summary, tree } = assembled.body;
    expect(summary.spanCount).toBe(written.length);
    const link = (s: { spanId: string; parentSpanId?: string | undefined; name: string }) =>
      `${s.name} ${s.spanId} <- ${s.parentSpanId ?? "root"}`;
    expect(assembled.spans.map(link).sort()).toEqual(written.map((s: StreamSpan) => link(s)).sort());

    expect(summary).toMatchObject({
      traceId,
      hasRoot: true,
      rootName: "POST /v1/research",
      rootService: "api",
      status: "ok",
      droppedSpans: 0,
      callCount: modelCallsOfResearch(view),
      researchId: id,
    });
    expect([...summary.stages].sort()).toEqual(["analysis", "factcheck", "synthesis"]);
    expect(tree).toHaveLength(1); // one root: every span found its parent

    // And the collector took the entries off the stream (acknowledged: nothing left pending).
    const pendingOn = async (shard: string) => ((await redis.xpending(shard, "trace-collector")) as [number])[0];
    const shards = spanStreamShards(stack.prefixes.spans, SPAN_STREAM_SHARDS_DEFAULT);
    await waitFor(async () => (await Promise.all(shards.map(pendingOn))).every((n) => n === 0), {
      timeoutMs: 10_000,
      what: "no pending entries in the collector's group",
    });
  });
});
