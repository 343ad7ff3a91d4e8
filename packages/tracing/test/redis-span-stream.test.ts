import { randomUUID } from "node:crypto";
import { SpanKind, trace } from "@opentelemetry/api";
import { startRedisServer, waitFor, type EphemeralRedis } from "@tracelane/testkit";
import { Redis } from "ioredis";
import { afterEach, describe, expect, inject, it } from "vitest";
import {
  SPAN_STREAM_DEFAULT,
  SPAN_STREAM_SHARDS_DEFAULT,
  spanStreamShardOf,
  spanStreamShards,
  startTracing,
  withProcessSpan,
  withPublishSpan,
  type TracingHandle,
} from "../src/index.js";
import { ATTR_JOB_ATTEMPT } from "@tracelane/tracing/attributes";

/** The parts of an OTLP/JSON ExportTraceServiceRequest these tests read. */
interface OtlpJson {
  resourceSpans: Array<{
    resource: { attributes: Array<{ key: string; value: { stringValue?: string } }> };
    scopeSpans: Array<{
      spans: Array<{
        traceId: string;
        spanId: string;
        parentSpanId?: string;
        name: string;
        kind: number;
        attributes: Array<{ key: string; value: { stringValue?: string; intValue?: number | string } }>;
      }>;
    }>;
  }>;
}

async function readStream(redis: Redis, stream: string) {
  const entries = await redis.xrange(stream, "-", "+");
  return entries.map(([id, fields]) => {
    expect(fields[0]).toBe("otlp"); // one field per entry
    return { id, request: JSON.parse(fields[1] ?? "") as OtlpJson };
  });
}

/** Every shard of the stream, in shard order, with its entries. */
async function readShards(redis: Redis, stream: string, shards = SPAN_STREAM_SHARDS_DEFAULT) {
  return Promise.all(spanStreamShards(stream, shards).map(async (key) => ({ key, entries: await readStream(redis, key) })));
}

const spansOf = (requests: OtlpJson[]) => requests.flatMap((r) => r.resourceSpans.flatMap((rs) => rs.scopeSpans.flatMap((ss) => ss.spans)));

// Each test starts and shuts down its own SDK (shutdown releases the OpenTelemetry globals).
describe("Redis span stream (trace-collector path)", () => {
  let tracing: TracingHandle | undefined;
  let redis: Redis | undefined;
  let ownRedis: EphemeralRedis | undefined;
  const streams: string[] = [];

  afterEach(async () => {
    await tracing?.shutdown();
    tracing = undefined;
    const keys = streams.splice(0).flatMap((s) => spanStreamShards(s, SPAN_STREAM_SHARDS_DEFAULT));
    if (redis && keys.length) await redis.del(...keys);
    redis?.disconnect();
    redis = undefined;
    await ownRedis?.destroy();
    ownRedis = undefined;
  });

  it("appends an exported batch of one trace as one OTLP/JSON entry in its trace's shard, with ids, parents and attributes", async () => {
    const stream = `test:spans:${randomUUID()}`;
    streams.push(stream);
    redis = new Redis(inject("redisUrl"));
    tracing = startTracing({
      serviceName: "stream-test",
      redisUrl: inject("redisUrl"),
      env: { TRACELANE_SPAN_STREAM: stream, TRACELANE_SPAN_STREAM_MAXLEN: "1000" },
    });

    const ids = await withPublishSpan({ queue: "analysis", messageId: "job-1" }, async (carrier, publish) => {
      const consumerSpanId = await withProcessSpan(
        { queue: "analysis", messageId: "job-1", attempt: 1, carrier },
        async (span) => span.spanContext().spanId,
      );
      return { traceId: publish.spanContext().traceId, producerSpanId: publish.spanContext().spanId, consumerSpanId };
    });
    await tracing.forceFlush();

    const shards = await readShards(redis, stream);
    const home = spanStreamShardOf(stream, SPAN_STREAM_SHARDS_DEFAULT, ids.traceId);
    expect(shards.map((s) => [s.key, s.entries.length])).toEqual(shards.map((s) => [s.key, s.key === home ? 1 : 0]));
    const request = shards.find((s) => s.key === home)!.entries[0]!.request;
    expect(request.resourceSpans[0]?.resource.attributes).toContainEqual({ key: "service.name", value: { stringValue: "stream-test" } });
    const spans = spansOf([request]);
    const producer = spans.find((s) => s.spanId === ids.producerSpanId);
    const consumer = spans.find((s) => s.spanId === ids.consumerSpanId);
    expect(producer).toMatchObject({ traceId: ids.traceId, name: "publish analysis", kind: SpanKind.PRODUCER + 1 });
    expect(producer?.parentSpanId ?? "").toBe("");
    expect(consumer).toMatchObject({
      traceId: ids.traceId,
      parentSpanId: ids.producerSpanId,
      name: "process analysis",
      kind: SpanKind.CONSUMER + 1,
    });
    expect(consumer?.attributes).toContainEqual({ key: ATTR_JOB_ATTEMPT, value: { intValue: 1 } });
    expect(tracing.stats()).toMatchObject({ exportedSpans: 2, droppedSpans: 0, failedExports: 0 });
  });

  it("splits a batch by trace id: each trace's spans land in one shard, many traces spread over all shards", async () => {
    const stream = `test:spans:${randomUUID()}`;
    streams.push(stream);
    redis = new Redis(inject("redisUrl"));
    tracing = startTracing({
      serviceName: "shard-test",
      redisUrl: inject("redisUrl"),
      // No scheduled export: the one forceFlush below exports every span as one batch.
      env: { TRACELANE_SPAN_STREAM: stream, TRACELANE_SPAN_STREAM_SHARDS: "4", OTEL_BSP_SCHEDULE_DELAY: "600000" },
    });
    const tracer = trace.getTracer("shard-test");
    // Trace ids are random: traces are started until every shard has two.
    const perShard = new Map(spanStreamShards(stream, 4).map((k) => [k, 0]));
    const traceIds: string[] = [];
    while ([...perShard.values()].some((n) => n < 2)) {
      tracer.startActiveSpan("root", (root) => {
        tracer.startSpan("child a").end();
        tracer.startSpan("child b").end();
        root.end();
        const id = root.spanContext().traceId;
        traceIds.push(id);
        const key = spanStreamShardOf(stream, 4, id);
        perShard.set(key, perShard.get(key)! + 1);
      });
    }
    await tracing.forceFlush();

    const shards = await readShards(redis, stream, 4);
    // One XADD per shard the batch touched: here every shard, once.
    expect(shards.map((s) => s.entries.length)).toEqual([1, 1, 1, 1]);
    for (const shard of shards) {
      const spans = spansOf(shard.entries.map((e) => e.request));
      const ids = new Set(spans.map((s) => s.traceId));
      expect([...ids].every((id) => spanStreamShardOf(stream, 4, id) === shard.key)).toBe(true);
      expect(ids.size).toBe(perShard.get(shard.key));
      // Whole traces: a trace's three spans are all in its shard.
      expect(spans).toHaveLength(3 * ids.size);
    }
    expect(tracing.stats()).toMatchObject({ exportedSpans: 3 * traceIds.length, droppedSpans: 0, failedExports: 0 });
  });

  it("uses tracelane:spans when TRACELANE_SPAN_STREAM is unset and nothing when TRACELANE_SPAN_STREAM_ENABLED=false", () => {
    expect(SPAN_STREAM_DEFAULT).toBe("tracelane:spans");
    tracing = startTracing({ serviceName: "off", redisUrl: inject("redisUrl"), env: { TRACELANE_SPAN_STREAM_ENABLED: "false" } });
    expect(tracing.enabled).toBe(true);
    expect(tracing.stats().destinations).toEqual({});
  });

  it("counts a batch lost while Redis is down as dropped and delivers again once Redis is back", async () => {
    ownRedis = await startRedisServer();
    const stream = `test:spans:${randomUUID()}`;
    tracing = startTracing({ serviceName: "blip-test", redisUrl: ownRedis.url, env: { TRACELANE_SPAN_STREAM: stream } });
    const tracer = trace.getTracer("blip-test");

    tracer.startSpan("before outage").end();
    await tracing.forceFlush();
    expect(tracing.stats()).toMatchObject({ exportedSpans: 1, failedExports: 0 });

    await ownRedis.stop();
    tracer.startSpan("during outage").end();
    await tracing.forceFlush(); // resolves: the failure is counted, not thrown
    expect(tracing.stats()).toMatchObject({ exportedSpans: 1, droppedSpans: 1, failedExports: 1 });

    await ownRedis.start();
    redis = new Redis(ownRedis.url);
    // The exporter's connection reconnects with backoff; keep ending spans until one gets through.
    let afterOutageTraceId = "";
    await waitFor(
      async () => {
        const span = tracer.startSpan("after outage");
        afterOutageTraceId = span.spanContext().traceId;
        span.end();
        await tracing!.forceFlush();
        return (await redis!.xlen(spanStreamShardOf(stream, SPAN_STREAM_SHARDS_DEFAULT, afterOutageTraceId))) > 0;
      },
      { what: "a span exported after Redis came back", timeoutMs: 15_000, intervalMs: 100 },
    );
    const names = spansOf((await readShards(redis, stream)).flatMap((s) => s.entries.map((e) => e.request))).map((s) => s.name);
    expect(names).toContain("after outage");
    expect(names).not.toContain("during outage");
  });
});
