import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { GEN_AI_DURATION_BUCKETS, GEN_AI_TOKEN_BUCKETS } from "@tracelane/metrics";
import { bucketOf, scrapeMetrics } from "@tracelane/metrics/testing";
import { loadPriceTable } from "@tracelane/pricing";
import { createTraceReader } from "@tracelane/trace-store";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { createCollector, decodeOtlpJson, DEFAULT_RULES, type Collector } from "../src/collector.js";
import { pipelineTrace, toOtlpJson, type StageSpec } from "../src/testing/index.js";
import { cleanup, connect, uniquePrefix } from "./support.js";

const url = inject("redisUrl");
const redis = connect(url);
const consumerRedis = connect(url);
const prefix = uniquePrefix("metrics");
const servers: Server[] = [];

/** One collector replica on the shared store, serving its HTTP app on a free port. */
async function replica(name: string): Promise<{ collector: Collector; metricsUrl: string }> {
  const collector = createCollector({
    redis,
    consumerRedis,
    stream: `${prefix}-spans`,
    prefix,
    anomalyStream: `${prefix}-anomalies`,
    anomalyStreamMaxLen: 100,
    ttlSeconds: 600,
    maxSpansPerTrace: 5_000,
    prices: loadPriceTable(),
    rules: DEFAULT_RULES,
    consumer: name,
    batchSize: 10,
    blockMs: 50,
    claimIdleMs: 60_000,
    claimIntervalMs: 60_000,
    deleteAcked: true,
    sweepIntervalMs: 60_000,
  });
  const server = createServer(collector.app);
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  return { collector, metricsUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}/metrics` };
}

let a: Awaited<ReturnType<typeof replica>>;
let b: Awaited<ReturnType<typeof replica>>;
beforeAll(async () => {
  [a, b] = await Promise.all([replica("a"), replica("b")]);
});
afterAll(async () => {
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  await cleanup(redis, prefix);
  await Promise.all([redis.quit(), consumerRedis.quit()]);
});

const STAGES: StageSpec[] = [
  { stage: "analysis", model: "gpt-4.1", provider: "openai", inputTokens: 1_000, outputTokens: 500, latencyMs: 800 },
  { stage: "factcheck", model: "gemini-2.5-flash", provider: "gcp.gemini", inputTokens: 1_500, outputTokens: 16, latencyMs: 640 },
  // A call that failed: no usage, error.type on its span, no cost.
  {
    stage: "synthesis",
    model: "deepseek-v3.2",
    provider: "deepseek",
    inputTokens: 0,
    outputTokens: 0,
    latencyMs: 90,
    error: "rate_limited",
  },
];

describe("collector /metrics (spanmetrics)", () => {
  it("derives GenAI token, duration and cost metrics from stored spans, counting each span once across redeliveries and replicas", async () => {
    const spans = decodeOtlpJson(toOtlpJson(pipelineTrace({ stages: STAGES, startMs: Date.now() - 5_000 }))).spans;
    await a.collector.assembler.ingest(spans);
    await a.collector.assembler.ingest(spans); // redelivered to the same replica
    await b.collector.assembler.ingest(spans); // and seen by a second replica
    const trace = (await createTraceReader(redis, { prefix }).getTrace(spans[0]!.traceId))!;
    const [ma, mb] = await Promise.all([scrapeMetrics(a.metricsUrl), scrapeMetrics(b.metricsUrl)]);

    // Span outcomes: replica a stored each span once and saw it again; b only saw duplicates.
    expect(ma.value("tracelane_collector_spans_total", { tracelane_span_outcome: "stored" })).toBe(spans.length);
    expect(ma.value("tracelane_collector_spans_total", { tracelane_span_outcome: "duplicate" })).toBe(spans.length);
    expect(mb.value("tracelane_collector_spans_total", { tracelane_span_outcome: "stored" })).toBe(0);
    expect(mb.value("tracelane_collector_spans_total", { tracelane_span_outcome: "duplicate" })).toBe(spans.length);
    expect(ma.histogram("tracelane_collector_ingest_lag_seconds").count).toBe(spans.length);
    expect(mb.histogram("tracelane_collector_ingest_lag_seconds").count).toBe(0);

    // Replica b recorded no call: summed over replicas, each call counts once.
    expect(mb.histogram("gen_ai_client_operation_duration_seconds").count).toBe(0);
    expect(mb.value("tracelane_gen_ai_client_cost_usd_total")).toBe(0);

    const chats = trace.spans.filter((s) => s.call);
    expect(chats).toHaveLength(3);
    for (const st of STAGES) {
      const chat = chats.find((s) => s.call!.model === st.model)!;
      const labels = {
        gen_ai_request_model: st.model,
        gen_ai_provider_name: st.provider!,
        gen_ai_operation_name: "chat",
        tracelane_stage: st.stage,
      };
      const d = ma.histogram("gen_ai_client_operation_duration_seconds", labels);
      expect(d.count, st.model).toBe(1);
      expect(d.sum).toBeCloseTo(chat.durationMs / 1000, 9);
      const le = bucketOf(chat.durationMs / 1000, GEN_AI_DURATION_BUCKETS);
      const below = GEN_AI_DURATION_BUCKETS.filter((x) => x < Number(le)).at(-1);
      expect(d.buckets[le]).toBe(1);
      if (below !== undefined) expect(d.buckets[String(below)]).toBe(0);

      if (st.error) {
        expect(ma.histogram("gen_ai_client_operation_duration_seconds", { ...labels, error_type: st.error }).count).toBe(1);
        expect(ma.histogram("gen_ai_client_token_usage", labels).count).toBe(0);
        expect(ma.value("tracelane_gen_ai_client_cost_usd_total", { gen_ai_request_model: st.model })).toBe(0);
        continue;
      }
      for (const [type, tokens] of [
        ["input", st.inputTokens],
        ["output", st.outputTokens],
      ] as const) {
        const t = ma.histogram("gen_ai_client_token_usage", { ...labels, gen_ai_token_type: type });
        expect(t).toMatchObject({ count: 1, sum: tokens });
        expect(t.buckets[bucketOf(tokens, GEN_AI_TOKEN_BUCKETS)]).toBe(1);
      }
      expect(ma.value("tracelane_gen_ai_client_cost_usd_total", { gen_ai_request_model: st.model, tracelane_stage: st.stage })).toBeCloseTo(
        chat.call!.costUsd!,
        12,
      );
    }
    expect(ma.value("tracelane_gen_ai_client_cost_usd_total")).toBeCloseTo(trace.summary.costUsd, 9);

    // Anomalies: once each, on the replica that detected them first.
    const types = trace.anomalies.map((x) => x.type);
    expect(types).toContain("error");
    for (const type of new Set(types)) {
      expect(ma.value("tracelane_collector_anomalies_total", { tracelane_anomaly_type: type })).toBe(
        types.filter((t) => t === type).length,
      );
    }
    expect(mb.value("tracelane_collector_anomalies_total")).toBe(0);
  });
});
