import { randomUUID } from "node:crypto";
import { Cluster } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startRedisCluster, type EphemeralRedisCluster } from "@tracelane/testkit";

let redisCluster: EphemeralRedisCluster;
let client: Cluster;
const prefix = `test-${randomUUID()}`;

const slotOf = async (key: string) => Number(await client.cluster("KEYSLOT", key));

beforeAll(async () => {
  redisCluster = await startRedisCluster();
  const startupNodes = redisCluster.seeds.split(",").map((seed) => {
    const [host, port] = seed.split(":");
    return { host: host!, port: Number(port) };
  });
  client = new Cluster(startupNodes);
});
afterAll(async () => {
  client?.disconnect();
  await redisCluster?.stop();
});

describe("startRedisCluster", () => {
  it("forms 3 masters that own all 16384 slots between them, each followed by one replica", async () => {
    const masters = await redisCluster.masters();
    expect(masters).toHaveLength(3);
    for (const m of masters) expect(m.slots.length).toBeGreaterThan(0);
    expect(masters.flatMap((m) => m.slots).reduce((n, [from, to]) => n + to - from + 1, 0)).toBe(16384);

    const replicas = redisCluster.nodes.filter((n) => n.role === "replica");
    expect(replicas).toHaveLength(3);
    expect(replicas.map((r) => r.masterPort).sort()).toEqual(masters.map((m) => m.port).sort());
    expect(redisCluster.seeds.split(",")).toHaveLength(6);
  });

  it("routes keys with different hash tags to their masters and reads them back", async () => {
    // Enough tags that every master owns at least one of the keys.
    const keys = Array.from({ length: 12 }, (_, i) => `${prefix}:{tag-${i}}:value`);
    for (const key of keys) await client.set(key, `v-${key}`);
    for (const key of keys) expect(await client.get(key)).toBe(`v-${key}`);

    const owners = new Set(await Promise.all(keys.map(async (key) => redisCluster.masterOfSlot(await slotOf(key)))));
    expect(owners.size).toBe(3);
    for (const port of owners) {
      expect(await redisCluster.keyCount(port)).toBeGreaterThan(0);
      expect((await redisCluster.commandStats(port)).set).toBeGreaterThan(0);
    }
  });

  it("keeps a key acknowledged by a replica when its master is SIGKILLed and the replica is promoted", async () => {
    const key = `${prefix}:{failover}:value`;
    // One pipeline goes to the key's master on one connection, so WAIT covers the SET before it.
    const replies = await client.pipeline().set(key, "kept").call("WAIT", "1", "1000").exec();
    expect(replies).toEqual([
      [null, "OK"],
      [null, 1],
    ]);

    const deadMaster = await redisCluster.masterOfSlot(await slotOf(key));
    const replica = redisCluster.nodes.find((n) => n.masterPort === deadMaster)!;
    expect(await redisCluster.keyCount(replica.port)).toBeGreaterThan(0);

    await redisCluster.killNode(deadMaster);
    expect(await redisCluster.waitForFailover(deadMaster)).toBe(replica.port);

    expect(await client.get(key)).toBe("kept");
    expect(await redisCluster.masterOfSlot(await slotOf(key))).toBe(replica.port);
    expect((await redisCluster.masters()).map((m) => m.port)).not.toContain(deadMaster);
  });
});
