/**
 * Ingest cost per span into a large trace: a parent->child chain of N spans is ingested in one batch,
 * then single spans are posted to that trace one by one (what a slow OTLP sender does), each ingest
 * timed, with a full read of the trace (the api's GET /v1/traces/:id: reader + JSON). N=100 and
 * N=5,000 in the same run, each beside the baseline: the same assembler re-assembling the whole trace
 * on every batch (immediateAssemblySpans = the span cap: how the collector worked before).
 *
 *   tsx scripts/bench/chain-ingest.ts   # starts its own redis-server
 */
import { randomUUID } from "node:crypto";
import { pathToFileURL } from "node:url";
import { Redis } from "ioredis";
import { startRedisServer } from "@tracelane/testkit";
import { createAssembler, decodeOtlpJson } from "@tracelane/trace-collector";
import { randomSpanId, randomTraceId, toOtlpJson, type SyntheticSpan } from "@tracelane/trace-collector/testing";
import { createTraceReader } from "@tracelane/trace-store";

interface ChainIngestRow {
  chainSpans: number;
  /** Median ms to ingest one more span into the trace: now, and re-assembling on every batch (baseline). */
  perSpanMs: number;
  baselinePerSpanMs: number;
  /** Median ms of reading the whole trace and serialising it as JSON. */
  getMs: number;
}

const hop = (traceId: string, i: number, t0: number, parentSpanId?: string): SyntheticSpan => ({
  traceId,
  spanId: randomSpanId(),
  ...(parentSpanId ? { parentSpanId } : {}),
  name: `hop ${i}`,
  kind: "producer",
  service: "chain-svc",
  startMs: t0 + i,
  endMs: t0 + i + 1,
});

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function deleteByPrefix(redis: Redis, prefix: string): Promise<void> {
  let cursor = "0";
  do {
    const [next, keys] = await redis.scan(cursor, "MATCH", `${prefix}*`, "COUNT", 1000);
    cursor = next;
    if (keys.length > 0) await redis.unlink(...keys);
  } while (cursor !== "0");
}

/** Median ms per single-span ingest into a chain of `n` spans, and per full read of it. */
async function run(redis: Redis, n: number, posts: number, reassembleEveryBatch: boolean) {
  const prefix = `bench-chain-${randomUUID().slice(0, 8)}`;
  const assembler = createAssembler({
    redis,
    prefix,
    ttlSeconds: 300,
    anomalyStream: `${prefix}-anomaly-stream`,
    ...(reassembleEveryBatch ? { immediateAssemblySpans: 1_000_000 } : {}),
  });
  const reader = createTraceReader(redis, { prefix });
  const traceId = randomTraceId();
  const t0 = Date.now() - 120_000;
  const spans: SyntheticSpan[] = [];
  for (let i = 0; i < n; i++) spans.push(hop(traceId, i, t0, spans[i - 1]?.spanId));
  await assembler.ingest(decodeOtlpJson(toOtlpJson(spans)).spans);
  const times: number[] = [];
  const gets: number[] = [];
  let parent = spans[n - 1]!.spanId;
  for (let i = 0; i < posts; i++) {
    const next = hop(traceId, n + i, t0, parent);
    parent = next.spanId;
    const decoded = decodeOtlpJson(toOtlpJson([next])).spans;
    const start = performance.now();
    await assembler.ingest(decoded);
    times.push(performance.now() - start);
    if (i % 5 === 0) {
      const g = performance.now();
      JSON.stringify(await reader.getTrace(traceId));
      gets.push(performance.now() - g);
    }
  }
  await assembler.close();
  await deleteByPrefix(redis, prefix);
  return { perSpanMs: median(times), getMs: median(gets) };
}

export async function benchChainIngest(redisUrl: string, sizes = [100, 5_000], posts = 50): Promise<ChainIngestRow[]> {
  const redis = new Redis(redisUrl);
  try {
    await run(redis, 500, 20, false); // JIT warm-up, not reported
    const rows: ChainIngestRow[] = [];
    for (const n of sizes) {
      const now = await run(redis, n, posts, false);
      const baseline = await run(redis, n, posts, true);
      rows.push({ chainSpans: n, perSpanMs: now.perSpanMs, baselinePerSpanMs: baseline.perSpanMs, getMs: now.getMs });
    }
    return rows;
  } finally {
    redis.disconnect();
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const server = process.env.REDIS_URL ? undefined : await startRedisServer();
  try {
    for (const r of await benchChainIngest(process.env.REDIS_URL ?? server!.url)) {
      console.log(
        `N=${r.chainSpans}: ingest 1 span ${r.perSpanMs.toFixed(2)} ms (baseline, re-assembling every batch: ${r.baselinePerSpanMs.toFixed(2)} ms); GET + JSON ${r.getMs.toFixed(1)} ms`,
      );
    }
  } finally {
    await server?.destroy();
  }
}
