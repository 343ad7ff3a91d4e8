import type { RedisClient } from "@tracelane/runtime";
import { traceKeys, type TraceKeys } from "./keys.js";
import { execWithScripts, RedisScript } from "./redis-script.js";

/**
 * Remove one trace and every index entry that points at it, atomically.
 *
 * Index entries live in zsets without TTL. The fixed indexes (start, cost, duration, status) hold
 * every trace; for the others (model, anomaly type, anomaly logs) each trace keeps a members set
 * listing "{zset}\t{member}" for every entry written for it. A trace is pruned when its
 * expiry score (refreshed with the key TTLs by every write) is due, or — with
 * `force` — when a reader found the summary already gone (Redis expired the keys
 * before the sweeper ran). A trace written again in the meantime is left alone.
 *
 * KEYS: expiry zset, members set, spans, dropped, summary, anomalies, then the fixed indexes
 *       (start, cost, duration, status:ok, status:error) that every trace is in
 * ARGV: traceId, force ("1"/"0")
 */
const PRUNE_LUA = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
local due = (not score) or tonumber(score) <= now
if not due then
  if ARGV[2] ~= '1' or redis.call('EXISTS', KEYS[5]) == 1 then return 0 end
end
local entries = redis.call('SMEMBERS', KEYS[2])
for _, e in ipairs(entries) do
  local tab = string.find(e, '\\t', 1, true)
  if tab then redis.call('ZREM', string.sub(e, 1, tab - 1), string.sub(e, tab + 1)) end
end
for i = 7, #KEYS do redis.call('ZREM', KEYS[i], ARGV[1]) end
redis.call('DEL', KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6])
redis.call('ZREM', KEYS[1], ARGV[1])
return 1
`;

export const pruneScript = new RedisScript("tracelane-prune-trace", PRUNE_LUA);

function pruneKeys(keys: TraceKeys, traceId: string): string[] {
  return [
    keys.idxExpiry,
    keys.members(traceId),
    ...keys.perTrace(traceId),
    keys.idxStart,
    keys.idxCost,
    keys.idxDuration,
    keys.idxStatus("ok"),
    keys.idxStatus("error"),
  ];
}

/** Prune the given traces if expired (or, with force, if their summary is gone). Returns how many were removed. */
export async function pruneTraces(
  redis: RedisClient,
  traceIds: readonly string[],
  opts: { prefix?: string; force?: boolean } = {},
): Promise<number> {
  if (traceIds.length === 0) return 0;
  const keys = traceKeys(opts.prefix);
  const replies = await execWithScripts(redis, [pruneScript], (p) => {
    for (const id of traceIds) pruneScript.queue(p, pruneKeys(keys, id), [id, opts.force ? "1" : "0"]);
  });
  return replies.reduce<number>((n, r) => n + Number(r), 0);
}

/**
 * One sweep: prune up to `limit` traces whose expiry is due (Redis clock). The collector runs
 * this periodically; readers also prune lazily what they trip over. Returns the number pruned.
 */
export async function sweepExpired(redis: RedisClient, opts: { prefix?: string; limit?: number } = {}): Promise<number> {
  const keys = traceKeys(opts.prefix);
  const [sec, usec] = await redis.time();
  const now = Number(sec) * 1000 + Math.floor(Number(usec) / 1000);
  const due = await redis.zrangebyscore(keys.idxExpiry, "-inf", now, "LIMIT", 0, opts.limit ?? 1000);
  return pruneTraces(redis, due, { prefix: keys.prefix });
}
