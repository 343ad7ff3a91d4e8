import { createTraceReader, indexSize, traceKeys, type SpanRecord } from "@tracelane/trace-store";
import { afterAll, afterEach, describe, expect, inject, it } from "vitest";
import { decodeOtlpJson } from "../src/collector.js";
import { pipelineTrace, toOtlpJson, type SyntheticSpan } from "../src/testing/synthetic.js";
import { cleanup, connect, rules, testAssembler, uniquePrefix } from "./support.js";

const redis = connect(inject("redisUrl"));
const prefixes: string[] = [];
const prefix = (name: string) => {
  const p = uniquePrefix(name);
  prefixes.push(p);
  return p;
};
const decode = (spans: SyntheticSpan[]) => decodeOtlpJson(toOtlpJson(spans)).spans;

afterEach(async () => {
  await cleanup(redis, ...prefixes.splice(0));
});
afterAll(async () => {
  await redis.quit();
});

describe("assembly", () => {
  it("assembles the same trace from out-of-order and duplicated delivery", async () => {
    const synthetic = pipelineTrace({
      stages: [
        { stage: "analysis", model: "gpt-4.1", inputTokens: 1_000, outputTokens: 500, latencyMs: 700, resends: 1 },
        { stage: "factcheck", model: "gpt-4.1-mini", inputTokens: 2_000, outputTokens: 100, latencyMs: 400, attempts: 2 },
      ],
    });
    const spans = decode(synthetic);

    const inOrder = prefix("inorder");
    await testAssembler(redis, inOrder).ingest(spans);

    const shuffled = prefix("shuffled");
    const a = testAssembler(redis, shuffled);
    const reversed = [...spans].reverse();
    await a.ingest(reversed.slice(0, 3));
    await a.ingest([...reversed.slice(2, 6), reversed[0]!]); // overlaps and repeats
    await a.ingest(reversed.slice(5));
    await a.ingest(spans); // the whole trace once more

    const one = await createTraceReader(redis, { prefix: inOrder }).getTrace(spans[0]!.traceId);
    const two = await createTraceReader(redis, { prefix: shuffled }).getTrace(spans[0]!.traceId);
    expect(one).toBeDefined();
    expect(two!.summary).toEqual(one!.summary);
    expect(two!.spans).toEqual(one!.spans);
    expect(one!.summary).toMatchObject({ spanCount: spans.length, hasRoot: true, rootName: "POST /v1/research", status: "ok", retries: 2 });
    expect(new Set(two!.anomalies.map((x) => `${x.type}|${x.spanId}`))).toEqual(
      new Set(one!.anomalies.map((x) => `${x.type}|${x.spanId}`)),
    );
  });

  it("assembles a trace whose batches alternate between two collector replicas, each keeping recent traces in memory", async () => {
    const synthetic = pipelineTrace({
      stages: [
        { stage: "analysis", model: "gpt-4.1", inputTokens: 1_000, outputTokens: 500, latencyMs: 700 },
        { stage: "factcheck", model: "gemini-2.5-flash", inputTokens: 2_000, outputTokens: 100, latencyMs: 400 },
        { stage: "synthesis", model: "deepseek-v3.2", inputTokens: 3_000, outputTokens: 800, latencyMs: 900 },
      ],
    });
    const spans = decode(synthetic);
    const whole = prefix("whole");
    await testAssembler(redis, whole, { recentTraces: 0 }).ingest(spans);

    const shared = prefix("replicas");
    const a = testAssembler(redis, shared);
    const b = testAssembler(redis, shared);
    const third = Math.ceil(spans.length / 3);
    await a.ingest(spans.slice(0, third)); // a holds the first third
    await b.ingest(spans.slice(third, 2 * third)); // the trace moves on without a
    await a.ingest(spans.slice(2 * third)); // a's copy is stale: it must read the trace back

    const expected = await createTraceReader(redis, { prefix: whole }).getTrace(spans[0]!.traceId);
    const got = await createTraceReader(redis, { prefix: shared }).getTrace(spans[0]!.traceId);
    expect(got!.summary).toEqual(expected!.summary);
    expect(got!.summary.spanCount).toBe(spans.length);
  });

  it("prices calls from tokens with the price table: gpt-4.1 1,000 in / 500 out = $0.006", async () => {
    const p = prefix("cost");
    const spans = decode(
      pipelineTrace({
        stages: [
          { stage: "analysis", model: "gpt-4.1", inputTokens: 1_000, outputTokens: 500, latencyMs: 100 },
          { stage: "factcheck", model: "gpt-4.1-mini", inputTokens: 10_000, outputTokens: 2_000, cachedInputTokens: 4_000, latencyMs: 100 },
        ],
      }),
    );
    await testAssembler(redis, p).ingest(spans);
    const t = await createTraceReader(redis, { prefix: p }).getTrace(spans[0]!.traceId);
    // gpt-4.1: 1000 x $2/M + 500 x $8/M; gpt-4.1-mini: 6000 x $0.4/M + 4000 x $0.1/M (cached) + 2000 x $1.6/M
    expect(t!.summary.byModel["gpt-4.1"]!.costUsd).toBeCloseTo(0.006, 12);
    expect(t!.summary.byModel["gpt-4.1-mini"]!.costUsd).toBeCloseTo(0.0024 + 0.0004 + 0.0032, 12);
    expect(t!.summary.costUsd).toBeCloseTo(0.012, 12);
    expect(t!.summary.byStage.analysis!.calls).toBe(1);
    expect(t!.summary).toMatchObject({ inputTokens: 11_000, outputTokens: 2_500, cachedInputTokens: 4_000, unpricedCalls: 0 });
  });

  it("leaves an unknown model's cost null (never $0) and flags unpriced_model", async () => {
    const p = prefix("unpriced");
    const spans = decode(
      pipelineTrace({ stages: [{ stage: "analysis", model: "acme-llm-9", inputTokens: 100, outputTokens: 50, latencyMs: 100 }] }),
    );
    await testAssembler(redis, p).ingest(spans);
    const t = await createTraceReader(redis, { prefix: p }).getTrace(spans[0]!.traceId);
    const chat = t!.spans.find((s) => s.call)!;
    expect(chat.call!.costUsd).toBeNull();
    expect(t!.summary.byModel["acme-llm-9"]!.costUsd).toBeNull();
    expect(t!.summary.unpricedCalls).toBe(1);
    expect(t!.anomalies.map((a) => a.type)).toContain("unpriced_model");
  });

  it("counts spans over the per-trace cap as dropped, idempotently", async () => {
    const p = prefix("cap");
    const spans = decode(pipelineTrace()); // 10 spans
    const a = testAssembler(redis, p, { maxSpansPerTrace: 4 });
    await a.ingest(spans);
    await a.ingest(spans.slice(5)); // redelivery of dropped and stored spans changes nothing
    const t = await createTraceReader(redis, { prefix: p }).getTrace(spans[0]!.traceId);
    expect(t!.summary.spanCount).toBe(4);
    expect(t!.summary.droppedSpans).toBe(6);
    expect(await redis.hlen(traceKeys(p).of(spans[0]!.traceId).spans)).toBe(4);
  });

  it("learns a per-model latency baseline and flags an outlier against it", async () => {
    const p = prefix("baseline");
    const a = testAssembler(redis, p, { rules: rules({ latency_vs_baseline: { factor: 3, minSamples: 20, window: 200 } }) });
    const one = (latencyMs: number) =>
      decode(pipelineTrace({ stages: [{ stage: "analysis", model: "gpt-4.1-nano", inputTokens: 10, outputTokens: 10, latencyMs }] }));
    for (let i = 0; i < 19; i++) await a.ingest(one(100 + (i % 5) * 10)); // 19 samples, p95 = 140
    const early = await a.ingest(one(1_000));
    expect(early.newAnomalies.map((x) => x.type)).not.toContain("latency_vs_baseline"); // only 19 samples so far
    for (let i = 0; i < 20; i++) await a.ingest(one(100 + (i % 5) * 10));
    const outlier = await a.ingest(one(1_500));
    const found = outlier.newAnomalies.find((x) => x.type === "latency_vs_baseline");
    expect(found).toMatchObject({ model: "gpt-4.1-nano", stage: "analysis", value: 1_500 });
    expect(found!.threshold).toBeGreaterThan(0);
    expect(found!.threshold).toBeLessThan(1_500);
    expect(outlier.newAnomalies.map((x) => x.type)).not.toContain("high_latency"); // 1.5 s is under the fixed 2 s rule
  });

  it("expires a trace after its TTL and removes it from every index", async () => {
    const p = prefix("ttl");
    const spans = decode(
      pipelineTrace({ stages: [{ stage: "analysis", model: "gpt-4.1", inputTokens: 9_000, outputTokens: 10, latencyMs: 2_500 }] }),
    );
    const traceId = spans[0]!.traceId;
    await testAssembler(redis, p, { ttlSeconds: 1 }).ingest(spans);
    const reader = createTraceReader(redis, { prefix: p, pruneOnRead: false });
    expect((await reader.listTraces({ anomaly: "high_tokens" })).traces.map((t) => t.traceId)).toEqual([traceId]);
    const indexKeys = async () => (await redis.keys(`${p}:*`)).filter((k) => !k.includes(":baseline:"));
    expect((await indexKeys()).length).toBeGreaterThan(8);

    await new Promise((r) => setTimeout(r, 1_300));
    expect(await reader.getTrace(traceId)).toBeUndefined();
    const { sweepExpired } = await import("@tracelane/trace-store");
    expect(await sweepExpired(redis, { prefix: p })).toBe(1);
    expect(await indexKeys()).toEqual([]);
    expect((await reader.listTraces()).traces).toEqual([]);
    expect(await reader.listAnomalies()).toEqual([]);
  });

  it("lets a reader prune an expired trace it trips over before the sweeper runs", async () => {
    const p = prefix("lazy");
    const spans = decode(pipelineTrace());
    await testAssembler(redis, p, { ttlSeconds: 1 }).ingest(spans);
    await new Promise((r) => setTimeout(r, 1_300));
    const reader = createTraceReader(redis, { prefix: p });
    expect((await reader.listTraces({ model: "gpt-4.1" })).traces).toEqual([]);
    const keys = traceKeys(p);
    expect(
      await indexSize(
        redis,
        keys.partitions.map((part) => part.idxStart),
      ),
    ).toBe(0);
    expect(await redis.exists(keys.of(spans[0]!.traceId).members)).toBe(0);
  });

  it("keeps a span's record as first stored when a duplicate differs", async () => {
    const p = prefix("dup");
    const [root] = decode(pipelineTrace());
    const a = testAssembler(redis, p);
    await a.ingest([root!]);
    const altered: SpanRecord = { ...root!, name: "changed" };
    const r = await a.ingest([altered]);
    expect(r).toMatchObject({ stored: 0, duplicates: 1 });
    expect((await createTraceReader(redis, { prefix: p }).getTrace(root!.traceId))!.summary.rootName).toBe("POST /v1/research");
  });
});
