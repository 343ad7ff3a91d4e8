import { createHash } from "node:crypto";
import { waitFor } from "@tracelane/testkit";
import { createTraceReader, TRACE_PARTITIONS, traceKeys, tracePartition } from "@tracelane/trace-store";
import { afterAll, describe, expect, inject, it } from "vitest";
import { decodeOtlpJson } from "../src/collector.js";
import { CollectorStats } from "../src/stats.js";
import { Sweeper } from "../src/sweeper.js";
import { pipelineTrace, toOtlpJson } from "../src/testing/synthetic.js";
import { cleanup, connect, testAssembler, uniquePrefix } from "./support.js";

const redis = connect(inject("redisUrl"));
const prefix = uniquePrefix("sweeper");
afterAll(async () => {
  await cleanup(redis, prefix);
  await redis.quit();
});

const idOf = (name: string) => createHash("md5").update(name).digest("hex");
/** Spans of `ids`' traces, each with a model call slow enough to be an anomaly (model and anomaly index entries too). */
const spansOf = (ids: string[]) =>
  decodeOtlpJson(
    toOtlpJson(
      ids.flatMap((traceId) =>
        pipelineTrace({ traceId, stages: [{ stage: "analysis", model: "gpt-4.1", inputTokens: 10, outputTokens: 10, latencyMs: 2_500 }] }),
      ),
    ),
  ).spans;

describe("expiry sweeper", () => {
  it("prunes the expired traces of every partition, and only those", async () => {
    const expiring = Array.from({ length: 200 }, (_, i) => idOf(`sweep-expiring-${i}`));
    const kept = Array.from({ length: 20 }, (_, i) => idOf(`sweep-kept-${i}`));
    expect(new Set(expiring.map(tracePartition)).size).toBe(TRACE_PARTITIONS);
    await testAssembler(redis, prefix, { ttlSeconds: 1 }).ingest(spansOf(expiring));
    await testAssembler(redis, prefix, { ttlSeconds: 600 }).ingest(spansOf(kept));

    // Wait on the clock the expiry scores are on (Redis's), not a sleep that a slow run could outlast or undercut.
    const keys = traceKeys(prefix);
    const scores = await Promise.all(expiring.map((id) => redis.zscore(keys.of(id).idxExpiry, id)));
    const lastExpiry = Math.max(...scores.map(Number));
    await waitFor(
      async () => {
        const [sec, usec] = await redis.time();
        return Number(sec) * 1000 + Math.floor(Number(usec) / 1000) > lastExpiry;
      },
      { what: "the Redis clock to pass the last expiry" },
    );

    const stats = new CollectorStats();
    expect(await new Sweeper(redis, prefix, 60_000, stats).sweep()).toBe(expiring.length);
    expect(stats.sweptTraces).toBe(expiring.length);

    // No key and no index entry of a pruned trace is left in any partition; the others are untouched.
    const gone = new Set(expiring);
    const left: string[] = [];
    for (const key of await redis.keys(`${prefix}:*`)) {
      if ((await redis.type(key)) !== "zset") continue;
      for (const member of await redis.zrange(key, 0, -1)) if (gone.has(member.split("|")[0]!)) left.push(`${key} ${member}`);
    }
    expect(left).toEqual([]);
    for (const id of expiring) expect(await redis.exists(...keys.of(id).perTrace, keys.of(id).members)).toBe(0);
    const listed = (await createTraceReader(redis, { prefix, pruneOnRead: false }).listTraces({ limit: 500 })).traces;
    expect(listed.map((t) => t.traceId).sort()).toEqual([...kept].sort());
    expect(await new Sweeper(redis, prefix, 60_000).sweep()).toBe(0);
  });
});
