import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import type { RedisClient } from "@tracelane/runtime";
import { createAssembler, decodeOtlpJson, DEFAULT_RULES, withSettings } from "@tracelane/trace-collector";
import { createRedis } from "@tracelane/runtime";
import { createTraceReader, type Anomaly, type SpanRecord } from "@tracelane/trace-store";
import { RedisStreamSpanExporter, SPAN_STREAM_SHARDS_DEFAULT, spanStreamShardOf } from "@tracelane/tracing";
import { useTracedPipeline } from "../support/traced-pipeline-fixture.js";
import { ATTR_HTTP_RESPONSE_STATUS_CODE } from "@tracelane/tracing/attributes";

// The real pipeline's spans (in-process, recorded in memory), shipped through the real span path
// (Redis stream exporter -> OTLP/JSON decode) into a real assembler: the anomalies a user sees.
const ctx = useTracedPipeline({
  // One job attempt: a failed call fails the research at once (BullMQ retries are another test's).
  env: { JOB_ATTEMPTS: "1", BREAKER_THRESHOLD: "1000", LLM_RETRY_BASE_MS: "300", LLM_RETRY_MAX_DELAY_MS: "2000" },
  stageEnv: {
    analysis: { LLM_MAX_RETRIES: "2" },
    // Synthesis makes one model call per research (the fact-check's calls are per claim): the timeouts go there.
    synthesis: { LLM_MAX_RETRIES: "1", LLM_TIMEOUT_MS: "300" },
  },
});

let redis: RedisClient;
const prefix = `anomalies-per-call-${process.pid}-${Date.now()}`;
// Low enough that every call here took longer, retries and backoff included.
const RULES = withSettings(DEFAULT_RULES, { high_latency: { latencyMs: 200 } });

beforeAll(() => {
  redis = createRedis(inject("redisUrl"), "producer");
});
afterAll(async () => {
  const keys = await redis.keys(`${prefix}*`);
  if (keys.length > 0) await redis.del(...keys);
  redis.disconnect();
});

/** Run a research to its end, then assemble its trace from the stream the way the collector does. */
async function anomaliesOf(query: string, expectStatus: "completed" | "failed"): Promise<{ anomalies: Anomaly[]; spans: SpanRecord[] }> {
  const submitted = await ctx.api.submit({ query });
  expect(submitted.status).toBe(202);
  const view = await ctx.pipeline.waitForFinal(submitted.body.id, 30_000);
  expect(view.status, JSON.stringify(view.error)).toBe(expectStatus);
  await new Promise((r) => setTimeout(r, 200)); // the consumer span ends just after the record does
  const finished = ctx.tracing.spans().filter((s) => s.spanContext().traceId === submitted.body.traceId);

  const stream = `${prefix}:spans:${submitted.body.traceId}`;
  const exporter = new RedisStreamSpanExporter({ redis, stream });
  await new Promise<void>((resolve, reject) => exporter.export([...finished], (r) => (r.code === 0 ? resolve() : reject(r.error))));
  // The exporter's default shards: the whole trace is in its one shard.
  const shard = spanStreamShardOf(stream, SPAN_STREAM_SHARDS_DEFAULT, submitted.body.traceId);
  const spans = (await redis.xrange(shard, "-", "+")).flatMap(([, fields]) => decodeOtlpJson(fields[fields.indexOf("otlp") + 1]!).spans);
  await createAssembler({ redis, prefix: `${prefix}:traces`, rules: RULES, anomalyStream: `${prefix}:anomalies` }).ingest(spans);
  const trace = await createTraceReader(redis, { prefix: `${prefix}:traces` }).getTrace(submitted.body.traceId);
  return { anomalies: trace!.anomalies, spans };
}

const modelCallAnomalies = (list: Anomaly[]) => list.filter((a) => a.spanId !== "");

describe("anomalies: one per model call, with its stage, attempts and the advice its cause needs", () => {
  it("a call that got HTTP 500 three times is one error anomaly with attempts 3, provider advice, and not high_latency", async () => {
    const { anomalies, spans } = await anomaliesOf("Why is the sky blue? [[sim:fault=500;model=gpt-4.1;times=3]]", "failed");
    // The trace holds three HTTP attempts under the one model call...
    const chat = spans.find((s) => s.name === "chat gpt-4.1")!;
    expect(spans.filter((s) => s.parentSpanId === chat.spanId).map((s) => s.attributes[ATTR_HTTP_RESPONSE_STATUS_CODE])).toEqual([
      500, 500, 500,
    ]);
    expect(chat.durationMs).toBeGreaterThan(200); // the backoff alone makes it "slow"
    // ...and the anomalies hold one row for it.
    expect(modelCallAnomalies(anomalies)).toEqual([
      expect.objectContaining({
        type: "error",
        spanId: chat.spanId,
        stage: "analysis",
        model: "gpt-4.1",
        attempts: 3,
        cause: "provider_error",
        value: 3,
      }),
    ]);
    const [error] = modelCallAnomalies(anomalies);
    expect(error!.recommendation).toMatch(/server errors \(HTTP 5xx\)/);
    expect(error!.recommendation).not.toMatch(/rate limit/i);
  });

  it("a call rate-limited on every attempt is one error anomaly advising on rate limits; the retried job's call that succeeded is none", async () => {
    const { anomalies, spans } = await anomaliesOf("How do tides work? [[sim:fault=429;model=gpt-4.1;times=3]]", "completed");
    const chats = spans.filter((s) => s.name === "chat gpt-4.1").sort((a, b) => a.startMs - b.startMs);
    expect(chats.map((c) => c.status)).toEqual(["error", "ok"]);
    expect(modelCallAnomalies(anomalies)).toEqual([
      expect.objectContaining({ type: "error", spanId: chats[0]!.spanId, stage: "analysis", attempts: 3, cause: "rate_limit" }),
    ]);
    expect(modelCallAnomalies(anomalies)[0]!.recommendation).toMatch(/rate-limited every attempt \(HTTP 429\)/);
  });

  it("a call that timed out on both attempts is one error anomaly with timeout advice, not high_latency", async () => {
    const { anomalies, spans } = await anomaliesOf("What is a neutron star? [[sim:fault=hang;model=deepseek-v3.2;times=2]]", "failed");
    const chat = spans.find((s) => s.name === "chat deepseek-v3.2")!;
    expect(spans.filter((s) => s.parentSpanId === chat.spanId)).toHaveLength(2);
    expect(modelCallAnomalies(anomalies)).toEqual([
      expect.objectContaining({
        type: "error",
        spanId: chat.spanId,
        stage: "synthesis",
        model: "deepseek-v3.2",
        attempts: 2,
        cause: "timeout",
      }),
    ]);
    expect(modelCallAnomalies(anomalies)[0]!.recommendation).toMatch(/timed out on every attempt/);
  });

  it("a call that succeeded on its second attempt is one retries anomaly with provider advice, and no error", async () => {
    const { anomalies } = await anomaliesOf("Why do cats purr? [[sim:fault=503;model=deepseek-v3.2;times=1]]", "completed");
    const calls = modelCallAnomalies(anomalies);
    expect(calls.map((a) => [a.type, a.stage, a.attempts, a.value])).toEqual([["retries", "synthesis", 2, 1]]);
    expect(calls[0]!.recommendation).toMatch(/server errors \(HTTP 5xx\) before it succeeded/);
  });
});
