import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { createRedis, slotOf, type RedisClient } from "@tracelane/runtime";
import { StageQueues, stageJobId } from "@tracelane/queue-contract";

let redis: RedisClient;
const queuesList: StageQueues[] = [];
const newId = () => randomUUID().replaceAll("-", "");

beforeAll(() => {
  redis = createRedis(inject("redisUrl"), "worker");
});
afterAll(async () => {
  for (const q of queuesList) {
    for (const stage of q.pipeline.names) for (const shard of q.shardsOf(stage)) await shard.obliterate({ force: true });
    await q.close();
  }
  redis.disconnect();
});

const open = (shards: number) => {
  const q = new StageQueues({ connection: redis, prefix: `test-shards-${newId().slice(0, 8)}`, shards });
  queuesList.push(q);
  return q;
};

describe("TRACELANE_QUEUE_SHARDS", () => {
  it("keeps one queue per stage, under the stage's own hash tag, by default", () => {
    const q = open(1);
    expect(q.pipeline.names.map((s) => q.shardsOf(s).map((queue) => queue.name))).toEqual([
      ["research-analysis"],
      ["research-factcheck"],
      ["research-synthesis"],
    ]);
    expect(new Set(q.pipeline.names.map((s) => slotOf(`${q.queue(s).opts.prefix}:x`))).size).toBe(3);
  });

  it("puts every job of a research in one shard, and spreads researches and stages over the slot space", async () => {
    const q = open(3);
    const ids = Array.from({ length: 30 }, newId);
    for (const id of ids) await q.publish(id, "analysis");
    const shards = q.shardsOf("analysis");
    const where = await Promise.all(
      ids.map(async (id) => (await Promise.all(shards.map((s) => s.getJob(stageJobId(id, "analysis"))))).map(Boolean)),
    );
    // Each job is in exactly the shard queue(stage, id) names, and every shard got some.
    ids.forEach((id, i) => {
      expect(where[i]!.filter(Boolean)).toHaveLength(1);
      expect(shards[where[i]!.indexOf(true)]).toBe(q.queue("analysis", id));
    });
    expect(shards.map((_, k) => where.some((w) => w[k]))).toEqual([true, true, true]);
    // Shard k of every stage sits in the k-th third of the slots: with three masters, one shard of each stage each.
    for (const stage of q.pipeline.names) {
      q.shardsOf(stage).forEach((shard, k) => {
        const slot = slotOf(`${shard.opts.prefix}:x`);
        expect(Math.floor(slot / (16384 / 3)), `${shard.name} slot ${slot}`).toBe(k);
      });
    }
  });
});
