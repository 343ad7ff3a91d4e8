import { RedisScript } from "@tracelane/trace-store";

/**
 * Insert a batch of spans of ONE trace, idempotent by span id, and read the trace back.
 *
 * KEYS: spans hash, dropped set
 * ARGV: ttlSeconds, maxSpans, knownVersion, spanId1, json1, spanId2, json2, ...
 *   knownVersion = the version of the trace the caller holds in memory (-1 for none)
 * Returns: { version, droppedCount, flags, upToDate, ...storedSpanJson }
 *   version  = spans stored + spans dropped (grows with every new span; orders summary writes)
 *   flags    = one char per input span: '1' stored now, '0' already stored, 'd' dropped now
 *              (over the cap), 'D' dropped before
 *   upToDate = 1 when the trace was at knownVersion before this call: the caller's copy is
 *              the stored set, so nothing more is returned
 *   stored   = otherwise every stored span except those stored by this call (the caller has them)
 */
export const insertSpansScript = new RedisScript(
  "tracelane-insert-spans",
  `
local spans, dropped = KEYS[1], KEYS[2]
local ttl, cap = tonumber(ARGV[1]), tonumber(ARGV[2])
local len = redis.call('HLEN', spans)
local upToDate = tonumber(ARGV[3]) == len + redis.call('SCARD', dropped)
local flags, mine = {}, {}
for i = 4, #ARGV, 2 do
  local id = ARGV[i]
  if mine[id] or redis.call('HEXISTS', spans, id) == 1 then
    flags[#flags + 1] = '0'
  elseif len < cap then
    redis.call('HSET', spans, id, ARGV[i + 1])
    len = len + 1
    mine[id] = true
    flags[#flags + 1] = '1'
  elseif redis.call('SADD', dropped, id) == 1 then
    flags[#flags + 1] = 'd'
  else
    flags[#flags + 1] = 'D'
  end
end
local droppedCount = redis.call('SCARD', dropped)
redis.call('EXPIRE', spans, ttl)
if droppedCount > 0 then redis.call('EXPIRE', dropped, ttl) end
local out = { len + droppedCount, droppedCount, table.concat(flags), upToDate and 1 or 0 }
if upToDate then return out end
local all = redis.call('HGETALL', spans)
for i = 1, #all, 2 do
  if not mine[all[i]] then out[#out + 1] = all[i + 1] end
end
return out
`,
);

/**
 * Store a recomputed summary (only if no newer version is stored: replicas may race on one
 * trace), refresh indexes, TTLs and expiry, and record anomalies first-detection-wins.
 *
 * KEYS: 1 summary, 2 anomalies hash, 3 spans, 4 dropped, 5 idx:expiry, 6 members set,
 *       7 idx:start, 8 idx:cost, 9 idx:duration, 10 idx:status:ok, 11 idx:status:error,
 *       12 anomaly log, 13 anomaly stream, then nTags start-scored tag zsets the trace belongs to
 *       (idx:model:{model} per model, idx:research when it is a research's trace), then per anomaly
 *       (idx:anomaly:{type}, anomaly log by type)
 * ARGV: 1 traceId, 2 version, 3 summary json, 4 ttlSeconds, 5 startMs, 6 costUsd, 7 durationMs,
 *       8 status, 9 nTags, 10 nAnomalies, 11 anomaly stream MAXLEN, then per anomaly
 *       (field, json, member, type, detectedAtMs)
 * Returns: { summaryWritten (0/1), index of each NEW anomaly... }
 *
 * Index scores only move one way (start ZADD LT, cost/duration/expiry ZADD GT) so a stale
 * writer can never roll them back; status moves only with the summary.
 */
export const writeTraceScript = new RedisScript(
  "tracelane-write-trace",
  `
local id = ARGV[1]
local ttl = tonumber(ARGV[4])
local start = ARGV[5]
local nTags = tonumber(ARGV[9])
local nAnomalies = tonumber(ARGV[10])
local members = KEYS[6]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
-- Tag (model, research) and anomaly index entries are listed in the trace's members set (when first added) so pruning
-- can find them; the fixed indexes (start, cost, duration, status) are known to the pruner.
local function index(key, flag, score, member)
  member = member or id
  if redis.call('ZADD', key, flag, score, member) == 1 then
    redis.call('SADD', members, key .. '\\t' .. member)
  end
end
local written = 0
local current = tonumber(redis.call('HGET', KEYS[1], 'v') or '-1')
if tonumber(ARGV[2]) >= current then
  written = 1
  redis.call('HSET', KEYS[1], 'v', ARGV[2], 'json', ARGV[3])
  redis.call('ZADD', KEYS[7], 'LT', start, id)
  redis.call('ZADD', KEYS[8], 'GT', ARGV[6], id)
  redis.call('ZADD', KEYS[9], 'GT', ARGV[7], id)
  if ARGV[8] == 'error' then
    redis.call('ZREM', KEYS[10], id)
    redis.call('ZADD', KEYS[11], start, id)
  else
    redis.call('ZREM', KEYS[11], id)
    redis.call('ZADD', KEYS[10], start, id)
  end
end
for i = 1, nTags do index(KEYS[13 + i], 'LT', start) end
local out = { written }
for j = 0, nAnomalies - 1 do
  local a = 12 + j * 5
  local typeTraces, typeLog = KEYS[14 + nTags + j * 2], KEYS[15 + nTags + j * 2]
  index(typeTraces, 'LT', start)
  if redis.call('HSETNX', KEYS[2], ARGV[a], ARGV[a + 1]) == 1 then
    out[#out + 1] = j
    index(KEYS[12], 'NX', ARGV[a + 4], ARGV[a + 2])
    index(typeLog, 'NX', ARGV[a + 4], ARGV[a + 2])
    redis.call('XADD', KEYS[13], 'MAXLEN', '~', ARGV[11], '*', 'type', ARGV[a + 3], 'traceId', id, 'anomaly', ARGV[a + 1])
  end
end
redis.call('ZADD', KEYS[5], 'GT', now + ttl * 1000, id)
for k = 1, 4 do redis.call('EXPIRE', KEYS[k], ttl) end
return out
`,
);
