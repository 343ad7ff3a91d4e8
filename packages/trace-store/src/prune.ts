import { batch, type RedisClient } from "@tracelane/runtime";
import { traceKeys, type TraceKeys } from "./keys.js";
import { batchWithScripts, RedisScript } from "./redis-script.js";

/**
 * Remove one trace and every index entry that points at it, atomically.
 *
 * Index entries live in zsets without TTL. The fixed indexes (start, cost, duration, status) of the trace's
 * partition hold every trace of it; for the others (model, research, anomaly type, anomaly logs) each trace keeps
 * a members set listing "{zset}\t{member}" for every entry written for it. A trace is pruned when its
 * expiry score (refreshed with the key TTLs by every write) is due, or — with
 * `force` — when a reader found the summary already gone (Redis expired the keys
 * before the sweeper ran). A trace written again in the meantime is left alone.
 *
 * The zsets named by the members set are the one set of keys not in KEYS (a trace's models are open-ended, and
 * reading them first would race with a write). They are still in the script's slot, which is all a Redis Cluster
 * checks (it refuses a key of another slot, not an undeclared one): only an entry whose key starts with ARGV[3],
 * the partition's `{p}:{t<k>}:`, is removed, and such a key's hash tag lies inside that prefix, the tag of every
 * key in KEYS. writeTrace only writes entries for keys of the trace's partition, so none is ever skipped.
 *
 * KEYS: expiry zset, members set, spans, dropped, summary, anomalies, then the partition's fixed indexes
 *       (start, cost, duration, status:ok, status:error) that every trace of it is in
 * ARGV: traceId, force ("1"/"0"), the partition's key prefix
 */
const PRUNE_LUA = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
local due = (not score) or tonumber(score) <= now
if not due then
  if ARGV[2] ~= '1' or redis.call('EXISTS', KEYS[5]) == 1 then return 0 end
end
local base = ARGV[3]
local entries = redis.call('SMEMBERS', KEYS[2])
for _, e in ipairs(entries) do
  local tab = string.find(e, '\\t', 1, true)
  if tab and string.sub(e, 1, #base) == base then redis.call('ZREM', string.sub(e, 1, tab - 1), string.sub(e, tab + 1)) end
end
for i = 7, #KEYS do redis.call('ZREM', KEYS[i], ARGV[1]) end
redis.call('DEL', KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6])
redis.call('ZREM', KEYS[1], ARGV[1])
return 1
`;

export const pruneScript = new RedisScript("tracelane-prune-trace", PRUNE_LUA);

/** Prune the given traces if expired (or, with force, if their summary is gone). Returns how many were removed. */
export async function pruneTraces(
  redis: RedisClient,
  traceIds: readonly string[],
  opts: { prefix?: string; force?: boolean } = {},
): Promise<number> {
  if (traceIds.length === 0) return 0;
  const keys = traceKeys(opts.prefix);
  const replies = await batchWithScripts(redis, [pruneScript], (commands) => {
    for (const id of traceIds) {
      const k = keys.of(id);
      pruneScript.queue(commands, [k.idxExpiry, k.members, ...k.perTrace, ...k.fixedIndexes], [id, opts.force ? "1" : "0", k.base]);
    }
  });
  return replies.reduce<number>((n, r) => n + Number(r), 0);
}

/** The traces of every partition whose expiry is due by the Redis clock, up to `limit` per partition. */
async function dueTraces(redis: RedisClient, keys: TraceKeys, limit: number): Promise<string[]> {
  const [sec, usec] = await redis.time();
  const now = Number(sec) * 1000 + Math.floor(Number(usec) / 1000);
  const replies = await batch(redis, (commands) => {
    for (const part of keys.partitions) commands.zrangebyscore(part.idxExpiry, "-inf", now, "LIMIT", 0, limit);
  });
  return replies.flatMap(([err, ids]) => {
    if (err) throw err;
    return ids as string[];
  });
}

/**
 * One sweep over every partition: prune up to `limit` traces per partition whose expiry is due (Redis clock). The
 * collector runs this periodically; readers also prune lazily what they trip over. Returns the number pruned: a
 * partition with more due makes it `limit` or more, so a caller sweeps again until it is less.
 */
export async function sweepExpired(redis: RedisClient, opts: { prefix?: string; limit?: number } = {}): Promise<number> {
  const keys = traceKeys(opts.prefix);
  return pruneTraces(redis, await dueTraces(redis, keys, opts.limit ?? 1000), { prefix: keys.prefix });
}
