import { waitFor } from "@tracelane/testkit";
import { createTraceReader } from "@tracelane/trace-store";
import { RedisStreamSpanExporter, spanStreamShardOf, spanStreamShards } from "@tracelane/tracing";
import { Redis } from "ioredis";
import { afterAll, afterEach, describe, expect, inject, it } from "vitest";
import {
  CollectorStats,
  createStreamHandler,
  decodeOtlpJson,
  StreamConsumer,
  streamLag,
  type StreamConsumerOptions,
  type StreamEntry,
} from "../src/collector.js";
import { pipelineTrace, type SyntheticSpan } from "../src/testing/synthetic.js";
import { cleanup, connect, recordSdkTrace, testAssembler, uniquePrefix, writeSpanStream } from "./support.js";

const url = inject("redisUrl");
const redis = connect(url);
const connections: Redis[] = [redis];
const prefixes: string[] = [];
const SHARDS = 4;

afterEach(async () => {
  await cleanup(redis, ...prefixes.splice(0));
});
afterAll(async () => {
  await Promise.all(connections.map((c) => c.quit().catch(() => c.disconnect())));
});

function setup(name: string) {
  const prefix = uniquePrefix(name);
  prefixes.push(prefix);
  const stream = `${prefix}-spans`;
  const shardKeys = spanStreamShards(stream, SHARDS);
  const assembler = testAssembler(redis, prefix);
  const consumer = (consumerName: string, over: Partial<StreamConsumerOptions> = {}, conn = connect(url)) => {
    connections.push(conn);
    const stats = new CollectorStats();
    return new StreamConsumer({
      redis: conn,
      stream,
      shards: SHARDS,
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
  /** At least `perShard` traces in every shard (trace ids are random: generated until each shard has enough). */
  const tracesOverShards = (perShard: number): SyntheticSpan[][] => {
    const count = new Map<string, number>(shardKeys.map((k) => [k, 0]));
    const traces: SyntheticSpan[][] = [];
    while ([...count.values()].some((n) => n < perShard)) {
      const t = pipelineTrace();
      const key = spanStreamShardOf(stream, SHARDS, t[0]!.traceId);
      count.set(key, count.get(key)! + 1);
      traces.push(t);
    }
    return traces;
  };
  const pending = async (group: string) => {
    const per = await Promise.all(shardKeys.map(async (k) => ((await redis.xpending(k, group)) as [number])[0]));
    return { total: per.reduce((a, b) => a + b, 0), per };
  };
  const lengths = () => Promise.all(shardKeys.map((k) => redis.xlen(k)));
  const reader = createTraceReader(redis, { prefix });
  const expectAssembled = async (traces: SyntheticSpan[][]) => {
    for (const spans of traces) {
      const t = await reader.getTrace(spans[0]!.traceId);
      expect(t?.summary.spanCount).toBe(spans.length);
      expect(new Set(t!.spans.map((s) => s.spanId))).toEqual(new Set(spans.map((s) => s.spanId)));
    }
  };
  const allAssembled = async (traces: SyntheticSpan[][]) => {
    for (const spans of traces) if ((await reader.getTrace(spans[0]!.traceId))?.summary.spanCount !== spans.length) return false;
    return true;
  };
  return { prefix, stream, shardKeys, assembler, consumer, tracesOverShards, pending, lengths, expectAssembled, allAssembled };
}

/** The trace ids in a batch of stream entries. */
const traceIdsIn = (entries: StreamEntry[]) => entries.flatMap((e) => decodeOtlpJson(e.fields.otlp!).spans.map((s) => s.traceId));

describe("stream consumer", () => {
  it("reads every shard of the span stream: traces spread over all shards, and every trace is assembled", async () => {
    const { stream, shardKeys, consumer, tracesOverShards, pending, lengths, expectAssembled } = setup("shards");
    const traces = tracesOverShards(3);
    const written = await writeSpanStream(redis, stream, traces, { shards: SHARDS, spansPerEntry: 16 });
    expect([...written.keys()].sort()).toEqual([...shardKeys].sort());
    const entries = [...written.values()].reduce((a, b) => a + b, 0);

    const c = consumer("collector-n");
    await c.ensureGroup();
    expect(c.shardKeys).toEqual(shardKeys);
    // /stats' lag: summed over the shards, and each shard's own.
    const before = await streamLag(redis, stream, SHARDS, c.group);
    expect(before).toMatchObject({ stream, length: entries, pending: 0, lag: entries });
    expect(before.shards.map((s) => [s.key, s.length])).toEqual(shardKeys.map((k) => [k, written.get(k)]));

    expect(await c.drain()).toBe(entries);
    expect((await pending(c.group)).total).toBe(0);
    expect(await lengths()).toEqual(shardKeys.map(() => 0)); // acknowledged entries are deleted
    expect(await streamLag(redis, stream, SHARDS, c.group)).toMatchObject({ length: 0, pending: 0, lag: 0 });
    await expectAssembled(traces);
  });

  it("loses no span when a collector dies mid-batch: another claims its pending entries on every shard and finishes them", async () => {
    const { stream, shardKeys, assembler, consumer, tracesOverShards, pending, lengths, expectAssembled } = setup("crash");
    const traces = tracesOverShards(4);
    const written = await writeSpanStream(redis, stream, traces, { shards: SHARDS, spansPerEntry: 16 });

    // Consumer A reads a batch of every shard, stores part of each, then "dies" before acknowledging anything.
    const a = consumer("collector-a", {
      batchSize: 10,
      handle: async (batch) => {
        await createStreamHandler(assembler, new CollectorStats())(batch.slice(0, 3));
        throw new Error("killed");
      },
    });
    await a.ensureGroup();
    await expect(a.readOnce()).rejects.toThrow("killed");
    const held = shardKeys.map((k) => Math.min(10, written.get(k)!));
    expect(held.every((n) => n > 0)).toBe(true);
    expect(await pending(a.group)).toEqual({ total: held.reduce((x, y) => x + y, 0), per: held });

    // Consumer B reads the rest; A's entries are not idle past B's claim threshold (a minute), so they stay
    // pending. (A short threshold here would race the drain itself on a loaded machine.)
    const b = consumer("collector-b");
    await b.drain();
    expect((await pending(b.group)).per).toEqual(held);
    // The same collector once A's entries have been idle longer than its threshold: it claims and finishes them.
    const bLater = consumer("collector-b", { claimIdleMs: 50 });
    await new Promise((r) => setTimeout(r, 100));
    await bLater.drain();
    expect((await pending(b.group)).total).toBe(0);
    expect(await lengths()).toEqual(shardKeys.map(() => 0));
    await expectAssembled(traces);
  });

  it("shares every shard between two consumers of the group: each entry goes to one of them", async () => {
    const { stream, shardKeys, assembler, consumer, tracesOverShards, pending, expectAssembled } = setup("share");
    const traces = tracesOverShards(2);
    const written = await writeSpanStream(redis, stream, traces, { shards: SHARDS, spansPerEntry: 4 });
    expect(shardKeys.every((k) => written.get(k)! > 3)).toBe(true); // more than one batch per shard
    const seen = { a: [] as string[], b: [] as string[] };
    const recording = (name: "a" | "b") => (over: Partial<StreamConsumerOptions>) => {
      const stats = new CollectorStats();
      const assemble = createStreamHandler(assembler, stats);
      return consumer(`collector-${name}`, {
        batchSize: 3,
        handle: async (entries) => {
          seen[name].push(...traceIdsIn(entries));
          await assemble(entries);
        },
        stats,
        ...over,
      });
    };
    const a = recording("a")({});
    const b = recording("b")({});
    await a.ensureGroup();
    // Turn about, one batch of every shard each: the group hands each of them the entries the other has not had.
    for (;;) {
      const n = (await a.readOnce()) + (await b.readOnce());
      if (n === 0) break;
    }
    expect(seen.a.length + seen.b.length).toBe(traces.flat().length); // no span delivered twice
    const shardsOf = (ids: string[]) => new Set(ids.map((id) => spanStreamShardOf(stream, SHARDS, id)));
    expect(shardsOf(seen.a)).toEqual(new Set(shardKeys));
    expect(shardsOf(seen.b)).toEqual(new Set(shardKeys));
    expect((await pending(a.group)).total).toBe(0);
    await expectAssembled(traces);
  });

  it("hands a dead replica's pending entries to the running one, whose shard loops claim them", async () => {
    const { stream, shardKeys, assembler, consumer, tracesOverShards, pending, allAssembled, expectAssembled } = setup("takeover");
    const traces = tracesOverShards(2);
    await writeSpanStream(redis, stream, traces, { shards: SHARDS, spansPerEntry: 8 });
    const dead = consumer("collector-dead", {
      batchSize: 2,
      handle: async () => {
        throw new Error("killed");
      },
    });
    await dead.ensureGroup();
    await expect(dead.readOnce()).rejects.toThrow("killed");
    expect((await pending(dead.group)).per.every((n) => n === 2)).toBe(true);

    // The running replica reads the rest at once and, once the dead one's entries are 200 ms idle, claims them.
    const alive = consumer("collector-alive", {
      claimIdleMs: 200,
      claimIntervalMs: 50,
      handle: createStreamHandler(assembler, new CollectorStats()),
    });
    alive.start();
    try {
      await waitFor(async () => (await allAssembled(traces)) && (await pending(alive.group)).total === 0, {
        what: "every trace assembled and nothing pending on any shard",
        timeoutMs: 15_000,
        intervalMs: 50,
      });
    } finally {
      await alive.stop();
    }
    const claims = await Promise.all(shardKeys.map((k) => redis.xinfo("CONSUMERS", k, alive.group)));
    expect(claims.every((list) => (list as unknown[]).length === 2)).toBe(true); // both consumers met every shard
    await expectAssembled(traces);
  });

  it("runs one read loop per shard on a connection of its own, and closes them when it stops", async () => {
    const { stream, consumer, tracesOverShards, allAssembled } = setup("loops");
    const name = `consumer-loops-${process.pid}-${Date.now()}`;
    const named = async () => ((await redis.client("LIST")) as string).split("\n").filter((l) => l.includes(` name=${name} `)).length;
    const base = new Redis(url, { maxRetriesPerRequest: 1, connectionName: name });
    base.on("error", () => {});
    const c = consumer("collector-loops", { blockMs: 500 }, base);
    await c.ensureGroup();
    c.start();
    await waitFor(async () => (await named()) === 1 + SHARDS, { what: `one connection per shard named ${name}`, timeoutMs: 10_000 });

    // Written while every loop blocks in XREADGROUP: each loop wakes for its own shard.
    const traces = tracesOverShards(1);
    await writeSpanStream(redis, stream, traces, { shards: SHARDS });
    await waitFor(() => allAssembled(traces), { what: "the traces written while the loops were running", timeoutMs: 10_000 });

    const t0 = Date.now();
    await c.stop();
    // Bounded by a blocked read (blockMs) and the connections' QUIT, not by the number of shards.
    expect(Date.now() - t0).toBeLessThan(3_000);
    await waitFor(async () => (await named()) === 1, { what: "the shard connections closed", timeoutMs: 5_000 });
  });

  it("acknowledges and counts entries that are not OTLP/JSON instead of retrying them forever", async () => {
    const { stream, shardKeys, consumer, pending, expectAssembled } = setup("poison");
    const trace = pipelineTrace();
    await redis.xadd(shardKeys[0]!, "*", "otlp", "{not json");
    await redis.xadd(shardKeys[1]!, "*", "other", "x");
    await writeSpanStream(redis, stream, [trace], { shards: SHARDS });
    const c = consumer("collector-c");
    await c.ensureGroup();
    expect(await c.drain()).toBeGreaterThanOrEqual(3);
    expect((await pending(c.group)).total).toBe(0);
    await expectAssembled([trace]);
  });

  it("assembles and prices spans written by the tracing package's RedisStreamSpanExporter (both on their default shards)", async () => {
    const { prefix, stream } = setup("exporter");
    const exporter = new RedisStreamSpanExporter({ redis, stream });
    const spans = recordSdkTrace({ service: "analysis-worker" });
    await new Promise<void>((resolve, reject) =>
      exporter.export(spans, (r) => (r.code === 0 ? resolve() : reject(r.error ?? new Error("export failed")))),
    );
    await exporter.shutdown();
    const stats = new CollectorStats();
    const c = new StreamConsumer({
      redis,
      stream,
      consumer: "collector-e",
      batchSize: 50,
      blockMs: 50,
      claimIdleMs: 60_000,
      claimIntervalMs: 0,
      deleteAcked: true,
      handle: createStreamHandler(testAssembler(redis, prefix), stats),
      stats,
    });
    await c.ensureGroup();
    await c.drain();
    const t = await createTraceReader(redis, { prefix }).getTrace(spans[0]!.spanContext().traceId);
    expect(t!.summary).toMatchObject({ spanCount: 5, rootService: "analysis-worker", stages: ["analysis"], queueWaitMs: 10 });
    expect(t!.summary.costUsd).toBeCloseTo(0.006, 12);
  });
});
