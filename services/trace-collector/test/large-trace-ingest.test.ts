import { startRedisServer, waitFor, type EphemeralRedis } from "@tracelane/testkit";
import { createTraceReader, indexSize } from "@tracelane/trace-store";
import type { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { decodeOtlpJson } from "../src/collector.js";
import { CollectorStats } from "../src/stats.js";
import { randomSpanId, randomTraceId, toOtlpJson, type SyntheticSpan } from "../src/testing/index.js";
import { connect, testAssembler, uniquePrefix } from "./support.js";

// A redis-server of its own: INFO's byte and command counters then count this test's traffic only.
let server: EphemeralRedis;
let redis: Redis;
beforeAll(async () => {
  server = await startRedisServer();
  redis = connect(server.url);
});
afterAll(async () => {
  await redis?.quit();
  await server?.destroy();
});

const t0 = Date.now() - 60_000;
const hop = (traceId: string, i: number, parentSpanId?: string): SyntheticSpan => ({
  traceId,
  spanId: randomSpanId(),
  ...(parentSpanId ? { parentSpanId } : {}),
  name: `hop ${i}`,
  kind: "producer",
  service: "chain-svc",
  startMs: t0 + i,
  endMs: t0 + i + 1,
});
function chain(n: number): SyntheticSpan[] {
  const traceId = randomTraceId();
  const out: SyntheticSpan[] = [];
  for (let i = 0; i < n; i++) out.push(hop(traceId, i, out[i - 1]?.spanId));
  return out;
}

async function netBytes(): Promise<number> {
  const info = await redis.info("stats");
  const field = (name: string) => Number(new RegExp(`^${name}:(\\d+)`, "m").exec(info)![1]);
  return field("total_net_input_bytes") + field("total_net_output_bytes");
}
async function commands(): Promise<number> {
  const info = await redis.info("commandstats");
  return [...info.matchAll(/calls=(\d+)/g)].reduce((n, m) => n + Number(m[1]), 0);
}

/**
 * Build a trace of `n` spans, then post `posts` single spans to it one by one (what a slow OTLP
 * sender does) through an assembler without a span cache (another replica's view: the worst case).
 * Returns Redis bytes and commands per post, and how many times the trace was re-assembled.
 */
async function perSpanCost(n: number, posts: number) {
  const stats = new CollectorStats();
  const assembler = testAssembler(redis, uniquePrefix(`o1-${n}`), { recentTraces: 0, stats, assemblyIntervalMs: 50 });
  const spans = chain(n);
  await assembler.ingest(decodeOtlpJson(toOtlpJson(spans)).spans);
  const writesBefore = stats.traceWrites;
  const bytes0 = await netBytes();
  const commands0 = await commands();
  let parent = spans[n - 1]!.spanId;
  for (let i = 0; i < posts; i++) {
    const next = hop(spans[0]!.traceId, n + i, parent);
    parent = next.spanId;
    await assembler.ingest(decodeOtlpJson(toOtlpJson([next])).spans);
  }
  const result = {
    bytes: ((await netBytes()) - bytes0) / posts,
    commands: ((await commands()) - commands0) / posts,
    reassemblies: stats.traceWrites - writesBefore,
  };
  return { ...result, assembler, traceId: spans[0]!.traceId, stats, prefix: assembler.keys.prefix };
}

describe("ingesting into a large trace is O(1) per span", () => {
  it("moves as many Redis bytes and commands per span into a 3,000-span trace as into a 50-span one", async () => {
    const small = await perSpanCost(50, 20);
    const large = await perSpanCost(3_000, 20);
    await Promise.all([small.assembler.close(), large.assembler.close()]);
    // Before: every post read the whole trace back (HGETALL of 3,000 spans, ~1 MB) and re-assembled it.
    expect(large.bytes).toBeLessThan(small.bytes * 1.5);
    expect(large.commands).toBeLessThanOrEqual(small.commands * 1.5);
    expect(small.reassemblies).toBe(20);
    expect(large.reassemblies).toBeLessThanOrEqual(2);
  });

  it("brings the large trace's summary up to date on the assembly timer, judging each deferred span once", async () => {
    const large = await perSpanCost(1_500, 10);
    const reader = createTraceReader(redis, { prefix: large.prefix });
    const summary = await waitFor(
      async () => {
        const t = await reader.getTrace(large.traceId);
        return t && t.summary.spanCount === 1_510 ? t.summary : undefined;
      },
      { timeoutMs: 10_000, what: "the deferred re-assembly" },
    );
    expect(summary.endMs).toBeCloseTo(t0 + 1_510, 0);
    expect(large.stats.deferredAssemblies).toBeGreaterThanOrEqual(9);
    expect(large.stats.tickAssemblies).toBeGreaterThanOrEqual(1);
    expect(large.stats.spansStored).toBe(1_510);
    await large.assembler.close();
  });

  it("lets another replica assemble a deferred trace whose replica died before its tick", async () => {
    const prefix = uniquePrefix("o1-orphan");
    const dying = connect(server.url);
    const a = testAssembler(dying, prefix, { assemblyIntervalMs: 100 });
    const spans = chain(1_500);
    await a.ingest(decodeOtlpJson(toOtlpJson(spans)).spans);
    const late = hop(spans[0]!.traceId, 1_500, spans[1_499]!.spanId);
    expect((await a.ingest(decodeOtlpJson(toOtlpJson([late])).spans)).deferred).toBe(1);
    dying.disconnect(); // the replica is gone: its timer cannot assemble anything any more

    const stats = new CollectorStats();
    const b = testAssembler(redis, prefix, { assemblyIntervalMs: 100, stats });
    await b.ingest(decodeOtlpJson(toOtlpJson(chain(3))).spans); // any batch: b's assembly timer runs from now on
    const reader = createTraceReader(redis, { prefix });
    await waitFor(async () => ((await reader.getTrace(spans[0]!.traceId))?.summary.spanCount === 1_501 ? true : undefined), {
      timeoutMs: 10_000,
      what: "the other replica to assemble the overdue trace",
    });
    expect(stats.tickAssemblies).toBeGreaterThanOrEqual(1);
    await waitFor(
      async () =>
        (await indexSize(
          redis,
          b.keys.partitions.map((part) => part.idxDeferred),
        )) === 0
          ? true
          : undefined,
      { what: "the deferred index to empty" },
    );
    await b.close();
  });

  it("assembles a batch that adds a quarter of the trace or more right away", async () => {
    const stats = new CollectorStats();
    const assembler = testAssembler(redis, uniquePrefix("o1-batch"), { stats, assemblyIntervalMs: 60_000 });
    const spans = chain(2_000);
    await assembler.ingest(decodeOtlpJson(toOtlpJson(spans.slice(0, 1_500))).spans);
    await assembler.ingest(decodeOtlpJson(toOtlpJson(spans.slice(1_500))).spans);
    const trace = await createTraceReader(redis, { prefix: assembler.keys.prefix }).getTrace(spans[0]!.traceId);
    expect(trace!.summary.spanCount).toBe(2_000);
    expect(stats.deferredAssemblies).toBe(0);
    await assembler.close();
  });
});
