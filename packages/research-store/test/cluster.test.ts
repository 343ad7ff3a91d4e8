import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createRedis, type RedisClient } from "@tracelane/runtime";
import { startRedisCluster, type EphemeralRedisCluster } from "@tracelane/testkit";
import { ResearchStore } from "@tracelane/research-store";

/**
 * The research store on a real Redis Cluster (3 masters + 3 replicas): every script and batch it sends must stay
 * in one slot per command (a cross-slot one is refused with CROSSSLOT), and what it reads back must be what one
 * Redis would answer.
 */

let cluster: EphemeralRedisCluster;
let redis: RedisClient;
const newId = () => randomUUID().replaceAll("-", "");
const usage = { inputTokens: 100, outputTokens: 50 };

beforeAll(async () => {
  cluster = await startRedisCluster();
  const clusterNodes = cluster.seeds.split(",").map((seed) => ({ host: "127.0.0.1", port: Number(seed.split(":")[1]) }));
  redis = createRedis({ url: "redis://127.0.0.1:6379", clusterNodes }, "worker");
}, 60_000);
afterAll(async () => {
  redis?.disconnect();
  await cluster?.stop();
});

describe("ResearchStore on a Redis Cluster", () => {
  it("creates, moves, charges, lists and counts researches whose keys live on every master", async () => {
    const store = new ResearchStore(redis, { prefix: `cluster-${newId()}` });
    const ids: string[] = [];
    for (let i = 0; i < 40; i++) {
      const id = newId();
      const created = await store.create({
        id,
        query: `q${i}`,
        options: {},
        traceId: newId(),
        owner: i % 2 === 0 ? "key_a" : "key_b",
        spendSubject: "key_a",
        idempotencyKey: `idem-${id}`,
      });
      expect(created).toEqual({ outcome: "created", id });
      ids.push(id);
      await new Promise((r) => setTimeout(r, 2)); // distinct createdAt
    }
    // A replay of an Idempotency-Key answers the research it made.
    expect(
      await store.create({ id: newId(), query: "q0", options: {}, traceId: null, owner: "key_a", idempotencyKey: `idem-${ids[0]}` }),
    ).toEqual({
      outcome: "existing",
      id: ids[0],
    });
    for (const id of ids.slice(0, 10)) {
      await store.stageStarted(id, "analysis", { model: "gpt-4.1", attempt: 1, queueWaitMs: 1 });
      await store.stageCompleted(id, "analysis", {
        output: "A",
        model: "gpt-4.1",
        usage,
        costUsd: 0.001,
        latencyMs: 5,
        next: "factcheck",
        spendSubject: "key_a",
      });
    }
    for (const id of ids.slice(10, 15)) expect(await store.cancel(id)).toBe("applied");

    // The keys really are spread: every master holds some of this store's records.
    const perMaster = await Promise.all((await cluster.masters()).map((m) => cluster.keyCount(m.port)));
    expect(perMaster.every((n) => n > 0)).toBe(true);

    const seen: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await store.list({ limit: 7, ...(cursor ? { cursor } : {}) });
      seen.push(...page.researches.map((r) => r.id));
      cursor = page.nextCursor;
    } while (cursor);
    expect(seen).toEqual([...ids].reverse());
    expect((await store.list({ owner: "key_b", limit: 100 })).researches.map((r) => r.id)).toEqual(
      ids.filter((_, i) => i % 2 === 1).reverse(),
    );
    expect(await store.countByStatus()).toMatchObject({ queued: 25, running: 10, cancelled: 5 });
    expect(await store.spentOn("key_a")).toBeCloseTo(0.01, 9);
    expect((await store.queuedOlderThan(0, 100)).sort()).toEqual(ids.slice(15).sort());
  }, 60_000);
});
