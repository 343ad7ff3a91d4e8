import { createTraceReader } from "@tracelane/trace-store";
import { RedisStreamSpanExporter } from "@tracelane/tracing";
import { afterAll, afterEach, describe, expect, inject, it } from "vitest";
import { CollectorStats, createStreamHandler, StreamConsumer, type StreamConsumerOptions } from "../src/collector.js";
import { pipelineTrace, toStreamEntries } from "../src/testing/synthetic.js";
import { cleanup, connect, recordSdkTrace, testAssembler, uniquePrefix } from "./support.js";

const url = inject("redisUrl");
const redis = connect(url);
const connections = [redis];
const prefixes: string[] = [];

afterEach(async () => {
  await cleanup(redis, ...prefixes.splice(0));
});
afterAll(async () => {
  await Promise.all(connections.map((c) => c.quit()));
});

function setup(name: string) {
  const prefix = uniquePrefix(name);
  prefixes.push(prefix);
  const stream = `${prefix}-spans`;
  const assembler = testAssembler(redis, prefix);
  const consumer = (consumerName: string, over: Partial<StreamConsumerOptions> = {}) => {
    const conn = connect(url);
    connections.push(conn);
    const stats = new CollectorStats();
    return new StreamConsumer({
      redis: conn,
      stream,
      consumer: consumerName,
      batchSize: 50,
      blockMs: 50,
      claimIdleMs: 60_000,
      claimIntervalMs: 0,
      deleteAcked: true,
      handle: createStreamHandler(assembler, stats),
      stats,
      ...over,
    });
  };
  return { prefix, stream, assembler, consumer, reader: createTraceReader(redis, { prefix }) };
}

describe("stream consumer", () => {
  it("loses no span when a collector dies mid-batch: another claims its pending entries and finishes them", async () => {
    const { stream, assembler, consumer, reader } = setup("crash");
    const traces = Array.from({ length: 30 }, () => pipelineTrace());
    const entries = toStreamEntries(traces, 16);
    for (const otlp of entries) await redis.xadd(stream, "*", "otlp", otlp);

    // Consumer A reads a batch, stores part of it, then "dies" before acknowledging anything.
    const a = consumer("collector-a", {
      batchSize: 10,
      handle: async (batch) => {
        await createStreamHandler(assembler, new CollectorStats())(batch.slice(0, 3));
        throw new Error("killed");
      },
    });
    await a.ensureGroup();
    await expect(a.readOnce(0)).rejects.toThrow("killed");
    expect((await redis.xpending(stream, a.group))[0]).toBe(10);

    // Consumer B reads the rest; A's entries are not idle past B's claim threshold (a minute), so they stay
    // pending. (A short threshold here would race the drain itself on a loaded machine.)
    const b = consumer("collector-b");
    await b.drain();
    expect((await redis.xpending(stream, b.group))[0]).toBe(10);
    // The same collector once A's entries have been idle longer than its threshold: it claims and finishes them.
    const bLater = consumer("collector-b", { claimIdleMs: 50 });
    await new Promise((r) => setTimeout(r, 100));
    await bLater.drain();
    expect((await redis.xpending(stream, b.group))[0]).toBe(0);
    expect(await redis.xlen(stream)).toBe(0); // acknowledged entries are deleted

    for (const spans of traces) {
      const t = await reader.getTrace(spans[0]!.traceId);
      expect(t?.summary.spanCount).toBe(spans.length);
      expect(new Set(t!.spans.map((s) => s.spanId))).toEqual(new Set(spans.map((s) => s.spanId)));
    }
  });

  it("acknowledges and counts entries that are not OTLP/JSON instead of retrying them forever", async () => {
    const { stream, consumer, reader } = setup("poison");
    const [trace] = [pipelineTrace()];
    await redis.xadd(stream, "*", "otlp", "{not json");
    await redis.xadd(stream, "*", "other", "x");
    for (const otlp of toStreamEntries([trace!])) await redis.xadd(stream, "*", "otlp", otlp);
    const c = consumer("collector-c");
    await c.ensureGroup();
    expect(await c.drain()).toBeGreaterThanOrEqual(3);
    expect((await redis.xpending(stream, c.group))[0]).toBe(0);
    expect((await reader.getTrace(trace![0]!.traceId))?.summary.spanCount).toBe(trace!.length);
  });

  it("assembles and prices spans written by the tracing package's RedisStreamSpanExporter", async () => {
    const { stream, consumer, reader } = setup("exporter");
    const exporter = new RedisStreamSpanExporter({ redis, stream });
    const spans = recordSdkTrace({ service: "analysis-worker" });
    await new Promise<void>((resolve, reject) =>
      exporter.export(spans, (r) => (r.code === 0 ? resolve() : reject(r.error ?? new Error("export failed")))),
    );
    await exporter.shutdown();
    const c = consumer("collector-e");
    await c.ensureGroup();
    await c.drain();
    const t = await reader.getTrace(spans[0]!.spanContext().traceId);
    expect(t!.summary).toMatchObject({ spanCount: 5, rootService: "analysis-worker", stages: ["analysis"], queueWaitMs: 10 });
    expect(t!.summary.costUsd).toBeCloseTo(0.006, 12);
  });
});
