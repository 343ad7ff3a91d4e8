import { randomUUID } from "node:crypto";
import { trace } from "@opentelemetry/api";
import { closeRedis, createRedis, slotOf, waitForRedis, type RedisClient } from "@tracelane/runtime";
import { startRedisCluster, waitFor, type EphemeralRedisCluster } from "@tracelane/testkit";
import { spanStreamShardOf, spanStreamShards, startTracing, type TracingHandle } from "@tracelane/tracing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { decodeOtlpJson, StreamConsumer, streamLag, type StreamConsumerOptions } from "../src/collector.js";

// The span path on a real Redis Cluster: services export through REDIS_CLUSTER_NODES, the collector reads every
// shard there (each shard its own hash tag, so the shards live on different masters).
let cluster: EphemeralRedisCluster;
let redis: RedisClient;
let tracing: TracingHandle | undefined;
const SHARDS = 4;

beforeAll(async () => {
  // No replicas: this test is about slots, not failover (and the machine running it may be small).
  cluster = await startRedisCluster({ replicasPerMaster: 0 });
  const clusterNodes = cluster.seeds.split(",").map((seed) => {
    const [host, port] = seed.split(":");
    return { host: host!, port: Number(port) };
  });
  redis = createRedis({ url: "redis://127.0.0.1:6379", clusterNodes }, "worker");
  await waitForRedis(redis, 10_000);
});
afterAll(async () => {
  await tracing?.shutdown();
  if (redis) await closeRedis(redis);
  await cluster?.stop();
});

describe("span stream shards on a Redis Cluster", () => {
  it("exports a service's spans to shards on several masters, and a collector reads them all, claiming a dead one's", async () => {
    const stream = `test:spans:${randomUUID().slice(0, 8)}`;
    const shardKeys = spanStreamShards(stream, SHARDS);
    const owners = new Set(await Promise.all(shardKeys.map((key) => cluster.masterOfSlot(slotOf(key)))));
    expect(owners.size).toBeGreaterThanOrEqual(2);

    // A service on the cluster: its tracing reads REDIS_CLUSTER_NODES (REDIS_URL left to its default).
    tracing = startTracing({
      serviceName: "cluster-test",
      env: {
        REDIS_CLUSTER_NODES: cluster.seeds,
        TRACELANE_SPAN_STREAM: stream,
        TRACELANE_SPAN_STREAM_SHARDS: String(SHARDS),
        OTEL_BSP_SCHEDULE_DELAY: "600000",
      },
    });
    const tracer = trace.getTracer("cluster-test");
    const perShard = new Map(shardKeys.map((k) => [k, 0]));
    const spanIds = new Set<string>();
    while ([...perShard.values()].some((n) => n < 2)) {
      tracer.startActiveSpan("root", (root) => {
        const child = tracer.startSpan("child");
        child.end();
        root.end();
        spanIds.add(root.spanContext().spanId).add(child.spanContext().spanId);
        const key = spanStreamShardOf(stream, SHARDS, root.spanContext().traceId);
        perShard.set(key, perShard.get(key)! + 1);
      });
    }
    await tracing.forceFlush();
    expect(tracing.stats()).toMatchObject({ exportedSpans: spanIds.size, droppedSpans: 0, failedExports: 0 });
    for (const key of shardKeys) expect(await redis.xlen(key), key).toBe(1);

    const options = (over: Partial<StreamConsumerOptions>): StreamConsumerOptions => ({
      redis,
      stream,
      shards: SHARDS,
      consumer: "unnamed",
      batchSize: 50,
      blockMs: 100,
      claimIdleMs: 60_000,
      claimIntervalMs: 50,
      deleteAcked: true,
      handle: async () => undefined,
      ...over,
    });
    // A replica that read every shard's entry, then died before acknowledging any.
    const dead = new StreamConsumer(
      options({
        consumer: "dead",
        handle: async () => {
          throw new Error("killed");
        },
      }),
    );
    await dead.ensureGroup();
    await expect(dead.readOnce()).rejects.toThrow("killed");
    expect((await streamLag(redis, stream, SHARDS, dead.group)).shards.map((s) => s.pending)).toEqual([1, 1, 1, 1]);

    // The live replica's shard loops (one Cluster connection each) claim them once idle.
    const received = new Set<string>();
    const alive = new StreamConsumer(
      options({
        consumer: "alive",
        claimIdleMs: 200,
        handle: async (entries) => {
          for (const e of entries) for (const s of decodeOtlpJson(e.fields.otlp!).spans) received.add(s.spanId);
        },
      }),
    );
    alive.start();
    try {
      await waitFor(async () => received.size === spanIds.size && (await streamLag(redis, stream, SHARDS, alive.group)).pending === 0, {
        what: "every span read from the cluster's shards, nothing pending",
        timeoutMs: 15_000,
        intervalMs: 50,
      });
    } finally {
      await alive.stop();
    }
    expect(received).toEqual(spanIds);
    expect(await streamLag(redis, stream, SHARDS, alive.group)).toMatchObject({ length: 0, pending: 0, lag: 0 });
  });
});
