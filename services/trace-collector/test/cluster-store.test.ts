import { closeRedis, createRedis, slotOf, waitForRedis, type RedisClient } from "@tracelane/runtime";
import { startRedisCluster, waitFor, type EphemeralRedisCluster } from "@tracelane/testkit";
import { createTraceReader, indexSize, traceKeys, type SpanRecord, type TraceListItem } from "@tracelane/trace-store";
import type { Cluster } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createAssembler, decodeOtlpJson } from "../src/collector.js";
import { insertSpansScript, writeTraceScript } from "../src/assemble/scripts.js";
import { Sweeper } from "../src/sweeper.js";
import { pipelineTrace, toOtlpJson } from "../src/testing/synthetic.js";
import { uniquePrefix } from "./support.js";

// Three masters, no replicas: every partition's slot is on one of them, and the test needs no failover.
let cluster: EphemeralRedisCluster;
let redis: RedisClient;
const prefix = uniquePrefix("cluster");
const anomalyStream = `${prefix}-anomaly-stream`;
const base = Math.floor(Date.now() / 1000) * 1000 - 3_600_000;

const spansOf = (count: number, ttlTag: string): SpanRecord[] =>
  decodeOtlpJson(
    toOtlpJson(
      Array.from({ length: count }, (_, i) =>
        pipelineTrace({
          startMs: base + Math.floor(i / 3) * 1_000,
          researchId: `${ttlTag}-${i}`,
          stages: [{ stage: "analysis", model: i % 2 ? "gpt-4.1" : "gpt-4.1-mini", inputTokens: 100, outputTokens: 10, latencyMs: 2_500 }],
        }),
      ).flat(),
    ),
  ).spans;

beforeAll(async () => {
  cluster = await startRedisCluster({ masters: 3, replicasPerMaster: 0 });
  const clusterNodes = cluster.seeds.split(",").map((seed) => {
    const [host, port] = seed.split(":");
    return { host: host!, port: Number(port) };
  });
  redis = createRedis({ url: "redis://127.0.0.1:6379", clusterNodes }, "worker");
  await waitForRedis(redis);
});
afterAll(async () => {
  if (redis) await closeRedis(redis);
  await cluster?.stop();
});

describe("trace store on a Redis Cluster", () => {
  it("assembles traces whose partitions live on every master, and reads them back merged", async () => {
    const assembler = createAssembler({ redis, prefix, ttlSeconds: 600, anomalyStream });
    const spans = spansOf(64, "long");
    const result = await assembler.ingest(spans);
    expect(result).toMatchObject({ traces: 64, stored: spans.length });
    // Every master holds some partition's traces.
    const masters = await cluster.masters();
    const keys = traceKeys(prefix);
    const owners = new Set(await Promise.all(keys.partitions.map((part) => cluster.masterOfSlot(slotOf(part.base)))));
    expect(owners.size).toBe(masters.length);

    const reader = createTraceReader(redis, { prefix });
    const ids = [...new Set(spans.map((s) => s.traceId))];
    const all = (await Promise.all(ids.map((id) => reader.getTrace(id)))).map((d) => d!.summary);
    const order = (a: TraceListItem, b: TraceListItem) => b.startMs - a.startMs || (a.traceId < b.traceId ? 1 : -1);
    const paged: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await reader.listTraces({ limit: 10, ...(cursor ? { cursor } : {}) });
      paged.push(...page.traces.map((t) => t.traceId));
      cursor = page.nextCursor;
    } while (cursor);
    expect(paged).toEqual([...all].sort(order).map((t) => t.traceId));
    expect((await reader.listTraces({ model: "gpt-4.1", limit: 500 })).traces).toHaveLength(32);

    // high_latency on every trace: in the anomaly log of each partition, and XADDed once each to the one stream.
    expect(await reader.listAnomalies({ type: "high_latency", limit: 1_000 })).toHaveLength(64);
    expect(await redis.xlen(anomalyStream)).toBe(result.newAnomalies.length);
    expect((await reader.costStats({ since: base, until: base + 60_000 })).traces).toBe(64);
    expect(
      await indexSize(
        redis,
        keys.partitions.map((part) => part.idxStart),
      ),
    ).toBe(64);
    await assembler.close();
  });

  it("reloads its scripts on every master after they were flushed (NOSCRIPT), and goes on", async () => {
    const masters = (redis as Cluster).nodes("master");
    const assembler = createAssembler({ redis, prefix, ttlSeconds: 600, anomalyStream });
    await assembler.ingest(spansOf(3, "before-flush")); // loads the scripts
    await Promise.all(masters.map((node) => node.script("FLUSH")));
    const spans = spansOf(16, "after-flush");
    expect(await assembler.ingest(spans)).toMatchObject({ traces: 16, stored: spans.length });
    for (const node of masters) expect(await node.script("EXISTS", insertSpansScript.sha, writeTraceScript.sha)).toEqual([1, 1]);
    await assembler.close();
  });

  it("sweeps the expired traces of every partition, across the masters", async () => {
    const sweepPrefix = uniquePrefix("cluster-sweep");
    const assembler = createAssembler({ redis, prefix: sweepPrefix, ttlSeconds: 1, anomalyStream });
    const spans = spansOf(48, "short");
    await assembler.ingest(spans);
    await assembler.close();
    const keys = traceKeys(sweepPrefix);
    const ids = [...new Set(spans.map((s) => s.traceId))];
    const lastExpiry = Math.max(...(await Promise.all(ids.map((id) => redis.zscore(keys.of(id).idxExpiry, id)))).map(Number));
    await waitFor(
      async () => {
        const [sec, usec] = await redis.time();
        return Number(sec) * 1000 + Math.floor(Number(usec) / 1000) > lastExpiry;
      },
      { what: "the Redis clock to pass the last expiry" },
    );
    expect(await new Sweeper(redis, sweepPrefix, 60_000).sweep()).toBe(48);
    expect(
      await indexSize(
        redis,
        keys.partitions.map((part) => part.idxStart),
      ),
    ).toBe(0);
    expect(
      await indexSize(
        redis,
        keys.partitions.map((part) => part.idxModel("gpt-4.1")),
      ),
    ).toBe(0);
    expect(
      await indexSize(
        redis,
        keys.partitions.map((part) => part.anomalyLog),
      ),
    ).toBe(0);
  });
});
