/**
 * Collector throughput: spans assembled per second by ONE collector process.
 *
 *   tsx scripts/bench/collector.ts                 # starts its own redis-server
 *   REDIS_URL=redis://127.0.0.1:6379 SPANS=100000 tsx scripts/bench/collector.ts
 *
 * Pre-fills a private span stream with N spans of realistic pipeline traces (api root, then
 * publish/process/chat per stage; each service exports its own batches, so a trace arrives over
 * several entries, all in the trace's shard of the stream), then times:
 *   - baseline: raw XREAD + JSON.parse of the same entries (the floor any consumer pays);
 *   - decode:   XREAD + OTLP/JSON -> SpanRecord (no Redis writes);
 *   - collector: the real consumer (XREADGROUP, assembly, pricing, anomaly rules, indexes, XACK).
 */
import { randomUUID } from "node:crypto";
import { pathToFileURL } from "node:url";
import { Redis } from "ioredis";
import { loadPriceTable } from "@tracelane/pricing";
import { startRedisServer } from "@tracelane/testkit";
import {
  CollectorStats,
  createAssembler,
  createCollectorMetrics,
  createStreamHandler,
  decodeOtlpJson,
  DEFAULT_RULES,
  SPAN_STREAM_SHARDS_DEFAULT,
  spanStreamShardOf,
  spanStreamShards,
  StreamConsumer,
} from "@tracelane/trace-collector";
import { pipelineTrace, toStreamEntries, type SyntheticSpan } from "@tracelane/trace-collector/testing";
import { createTraceReader, indexSize } from "@tracelane/trace-store";

export interface BenchCollectorOptions {
  redisUrl: string;
  /** Spans to pre-fill (default 100,000). */
  spans?: number;
  /** Stream entries per XREADGROUP (COLLECTOR_BATCH_SIZE; default 200). */
  batchSize?: number;
  /** Spans per stream entry, i.e. per exported batch of one service (default 128). */
  spansPerEntry?: number;
}

const TARGET_SPANS_PER_SECOND = 20_000;

async function deleteByPrefix(redis: Redis, prefix: string): Promise<void> {
  let cursor = "0";
  do {
    const [next, keys] = await redis.scan(cursor, "MATCH", `${prefix}*`, "COUNT", 1000);
    cursor = next;
    if (keys.length > 0) await redis.unlink(...keys);
  } while (cursor !== "0");
}

/** redis-server's own CPU time (user + sys), ms. */
async function redisCpuMs(redis: Redis): Promise<number> {
  const info = await redis.info("cpu");
  const field = (name: string) => Number(new RegExp(`^${name}:([\\d.]+)`, "m").exec(info)?.[1] ?? 0);
  return (field("used_cpu_user") + field("used_cpu_sys")) * 1000;
}

/** The stream entries of `traces` as the services write them: each trace's to its shard, each service's spans batched. */
function shardedEntries(stream: string, traces: SyntheticSpan[][], spansPerEntry: number): { key: string; otlp: string }[] {
  const byShard = new Map<string, SyntheticSpan[][]>();
  for (const t of traces) {
    const key = spanStreamShardOf(stream, SPAN_STREAM_SHARDS_DEFAULT, t[0]!.traceId);
    const list = byShard.get(key);
    if (list) list.push(t);
    else byShard.set(key, [t]);
  }
  return [...byShard].flatMap(([key, group]) => toStreamEntries(group, spansPerEntry).map((otlp) => ({ key, otlp })));
}

/** Read every shard of the stream in batches with plain XREAD; `each` gets every entry's otlp field. */
async function readAll(redis: Redis, stream: string, batch: number, each: (otlp: string) => void): Promise<void> {
  for (const key of spanStreamShards(stream, SPAN_STREAM_SHARDS_DEFAULT)) {
    let last = "0-0";
    for (;;) {
      const reply = await redis.xread("COUNT", batch, "STREAMS", key, last);
      const entries = reply?.[0]?.[1] ?? [];
      if (entries.length === 0) break;
      for (const [id, fields] of entries) {
        last = id;
        const i = fields.indexOf("otlp");
        if (i >= 0) each(fields[i + 1]!);
      }
    }
  }
}

/** JIT warm-up: a few thousand spans through the same code under a throwaway prefix (not timed). */
async function warmUp(redis: Redis, consumerRedis: Redis, prefix: string, batchSize: number): Promise<void> {
  const stream = `${prefix}-spans`;
  const traces = Array.from({ length: 500 }, (_, i) => pipelineTrace({ startMs: Date.now() - 3_600_000 + i }));
  for (const e of shardedEntries(stream, traces, 128)) await redis.xadd(e.key, "*", "otlp", e.otlp);
  const assembler = createAssembler({ redis, prefix, ttlSeconds: 60, anomalyStream: `${prefix}-anomaly-stream` });
  const consumer = new StreamConsumer({
    redis: consumerRedis,
    stream,
    consumer: "warmup",
    batchSize,
    blockMs: 100,
    claimIdleMs: 600_000,
    claimIntervalMs: 600_000,
    deleteAcked: true,
    handle: createStreamHandler(assembler, new CollectorStats()),
  });
  await consumer.ensureGroup();
  await consumer.drain();
  await deleteByPrefix(redis, prefix);
}

export async function benchCollector(opts: BenchCollectorOptions): Promise<Record<string, number | string>> {
  const target = opts.spans ?? 100_000;
  const batchSize = opts.batchSize ?? 200;
  const prefix = `bench:collector:${randomUUID().slice(0, 8)}`;
  const stream = `${prefix}-spans`;
  const redis = new Redis(opts.redisUrl, { maxRetriesPerRequest: null });
  const consumerRedis = new Redis(opts.redisUrl, { maxRetriesPerRequest: null });
  try {
    // Realistic traces: 3 stages, some HTTP resends and BullMQ retries, a few slow or failing calls.
    const traces = [];
    let spans = 0;
    const start = Date.now() - 3_600_000;
    for (let i = 0; spans < target; i++) {
      const t = pipelineTrace({
        startMs: start + i * 3,
        stages: [
          {
            stage: "analysis",
            model: "gpt-4.1",
            inputTokens: 1_200 + (i % 7) * 100,
            outputTokens: 400,
            latencyMs: 600 + (i % 13) * 40,
            resends: i % 25 === 0 ? 1 : 0,
          },
          {
            stage: "factcheck",
            model: "gpt-4.1-mini",
            inputTokens: 1_800,
            outputTokens: 250,
            latencyMs: 350 + (i % 11) * 30,
            attempts: i % 50 === 0 ? 2 : 1,
          },
          { stage: "synthesis", model: "gemini-2.5-flash", inputTokens: 2_500, outputTokens: 900, latencyMs: i % 97 === 0 ? 2_600 : 900 },
        ],
      });
      traces.push(t);
      spans += t.length;
    }
    const entries = shardedEntries(stream, traces, opts.spansPerEntry ?? 128);
    for (let i = 0; i < entries.length; i += 500) {
      const p = redis.pipeline();
      for (const e of entries.slice(i, i + 500)) p.xadd(e.key, "*", "otlp", e.otlp);
      await p.exec();
    }

    // Baseline: raw XREAD + JSON.parse of the same entries.
    let t0 = performance.now();
    let parsed = 0;
    await readAll(redis, stream, batchSize, (otlp) => {
      const req = JSON.parse(otlp) as { resourceSpans: { scopeSpans: { spans: unknown[] }[] }[] };
      for (const rs of req.resourceSpans) for (const ss of rs.scopeSpans) parsed += ss.spans.length;
    });
    const baselineMs = performance.now() - t0;

    // Decode only: XREAD + OTLP/JSON -> SpanRecord.
    t0 = performance.now();
    let decoded = 0;
    await readAll(redis, stream, batchSize, (otlp) => {
      decoded += decodeOtlpJson(otlp).spans.length;
    });
    const decodeMs = performance.now() - t0;

    // The collector: consumer group read, assembly, pricing, rules, indexes, metrics, ack + delete.
    const stats = new CollectorStats();
    const metrics = createCollectorMetrics(stats);
    const assembler = createAssembler({
      redis,
      prefix,
      ttlSeconds: 3_600,
      maxSpansPerTrace: 5_000,
      prices: loadPriceTable(),
      rules: DEFAULT_RULES,
      anomalyStream: `${prefix}-anomaly-stream`,
      stats,
      // As createCollector wires them: /metrics derived from every stored span and new anomaly.
      onStored: (fresh, stages, nowMs) => metrics.recordStored(fresh, stages, nowMs),
      onNewAnomalies: (a) => metrics.recordAnomalies(a),
    });
    const consumer = new StreamConsumer({
      redis: consumerRedis,
      stream,
      consumer: "bench",
      batchSize,
      blockMs: 100,
      claimIdleMs: 600_000,
      claimIntervalMs: 600_000,
      deleteAcked: true,
      handle: createStreamHandler(assembler, stats),
      stats,
    });
    await consumer.ensureGroup();
    await warmUp(redis, consumerRedis, `${prefix}-warmup`, batchSize);
    // CPU time too: on a shared machine wall time depends on the neighbours, CPU time much less.
    const redisCpu0 = await redisCpuMs(redis);
    const cpu0 = process.cpuUsage();
    t0 = performance.now();
    await consumer.drain();
    const collectorMs = performance.now() - t0;
    const cpu = process.cpuUsage(cpu0);
    const collectorCpuMs = (cpu.user + cpu.system) / 1000;
    const redisMs = (await redisCpuMs(redis)) - redisCpu0;

    // Check: every trace queryable and complete (sampled), nothing pending.
    const reader = createTraceReader(redis, { prefix });
    const startIndexes = reader.keys.partitions.map((part) => part.idxStart);
    const stored = await indexSize(redis, startIndexes);
    for (const t of [traces[0]!, traces[Math.floor(traces.length / 2)]!, traces[traces.length - 1]!]) {
      const got = await reader.getTrace(t[0]!.traceId);
      if (got?.summary.spanCount !== t.length) throw new Error(`bench: trace ${t[0]!.traceId} incomplete`);
    }
    if (stored !== traces.length || stats.spansStored !== spans || parsed !== spans || decoded !== spans) {
      throw new Error(`bench: counts differ (traces ${stored}/${traces.length}, spans stored ${stats.spansStored}/${spans})`);
    }

    const perSecond = (ms: number) => Math.round(spans / (ms / 1000));
    const collectorRate = perSecond(collectorMs);
    return {
      spans,
      traces: traces.length,
      spansPerTrace: Number((spans / traces.length).toFixed(1)),
      streamEntries: entries.length,
      batchSize,
      baselineXreadJsonParseSpansPerSec: perSecond(baselineMs),
      decodeOnlySpansPerSec: perSecond(decodeMs),
      collectorSpansPerSec: collectorRate,
      collectorTracesPerSec: Math.round(traces.length / (collectorMs / 1000)),
      collectorMs: Math.round(collectorMs),
      collectorCpuMs: Math.round(collectorCpuMs),
      spansPerCollectorCpuSec: Math.round(spans / (collectorCpuMs / 1000)),
      redisCpuMs: Math.round(redisMs),
      traceWrites: stats.traceWrites,
      anomaliesFound: stats.newAnomalies,
      targetSpansPerSec: TARGET_SPANS_PER_SECOND,
      meetsTarget: collectorRate >= TARGET_SPANS_PER_SECOND ? "yes" : "no",
    };
  } finally {
    await deleteByPrefix(redis, prefix).catch(() => undefined);
    await Promise.all([redis.quit(), consumerRedis.quit()]);
  }
}

function printTable(result: Record<string, number | string>): void {
  const width = Math.max(...Object.keys(result).map((k) => k.length));
  console.log("collector benchmark (one process)");
  for (const [k, v] of Object.entries(result)) {
    console.log(`  ${k.padEnd(width)}  ${typeof v === "number" ? v.toLocaleString("en-US") : v}`);
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const own = process.env.REDIS_URL ? undefined : await startRedisServer();
  try {
    const result = await benchCollector({
      redisUrl: process.env.REDIS_URL ?? own!.url,
      ...(process.env.SPANS ? { spans: Number(process.env.SPANS) } : {}),
      ...(process.env.BATCH_SIZE ? { batchSize: Number(process.env.BATCH_SIZE) } : {}),
    });
    printTable(result);
  } finally {
    await own?.destroy();
  }
}
