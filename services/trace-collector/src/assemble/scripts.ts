import { RedisScript } from "@tracelane/trace-store";

/**
 * Insert a batch of spans of ONE trace, idempotent by span id, decide who may add to it, and read
 * the trace back only when the caller is to assemble it now.
 *
 * KEYS: spans hash, dropped set, summary hash (fields `origin` = internal|otlp and `owner` = key id
 *       live beside the summary's `v`/`json`, and go with it), the partition's deferred index (zset: trace -> due
 *       ms): all in the trace's partition, one slot
 * ARGV: 1 ttlSeconds, 2 maxSpans, 3 knownVersion (the version the caller holds in memory, -1 for
 *       none), 4 immediateSpans, 5 source (i = our services over the span stream, o = OTLP/HTTP, t = a deferred
 *       re-assembly: no spans, no ownership change),
 *       6 caller key id ('' without keys), 7 caller is admin (1/0), 8 owner key id named by an
 *       internal span of this batch (tracelane.owner, '' for none), 9 assembly interval ms (a deferred
 *       trace is due interval x ceil(spans / immediateSpans) from now, recorded in the deferred index unless
 *       already there), 10 traceId, then spanId1, json1, ...
 * Returns: { version, droppedCount, flags, mode, ...storedSpanJson }
 *   version = spans stored + spans dropped (grows with every new span; orders summary writes)
 *   flags   = one char per input span: '1' stored now, '0' already stored, 'd' dropped now (over
 *             the cap), 'D' dropped before, 'r' refused (the trace belongs to another key)
 *   mode    = 0 assemble now, the caller's copy (knownVersion) plus its fresh spans is the trace (never for a
 *               re-priced trace: the caller's copy has the calls as they were priced before);
 *             1 assemble now, every stored span but this call's follows;
 *             2 deferred: the trace is above immediateSpans and this call added less than a quarter
 *               of it, so re-assembling now would cost O(trace) for O(1) new spans (nothing follows);
 *             3 nothing to assemble (every span refused, or a deferred trace got only duplicates)
 *
 * Ownership: internal spans are always stored (our services' spans are trusted), and make the trace
 * internal, owned by the key the api names. An OTLP span joins an internal trace only with the
 * owner's key or an admin's; without keys configured, never. The first OTLP sender of a new trace
 * owns it the same way.
 */
export const insertSpansScript = new RedisScript(
  "tracelane-insert-spans",
  `
local spans, dropped, meta = KEYS[1], KEYS[2], KEYS[3]
local ttl, cap = tonumber(ARGV[1]), tonumber(ARGV[2])
local immediate = tonumber(ARGV[4])
local source, caller, admin, named = ARGV[5], ARGV[6], ARGV[7] == '1', ARGV[8]
local n = (#ARGV - 10) / 2
local origin = redis.call('HGET', meta, 'origin')
local owner = redis.call('HGET', meta, 'owner')
local refuse = false
if source == 'i' then
  if origin ~= 'internal' then
    redis.call('HSET', meta, 'origin', 'internal')
    redis.call('HDEL', meta, 'owner')
  end
  if named ~= '' then redis.call('HSET', meta, 'owner', named) end
elseif source == 'o' then
  -- Spans stored before traces had an origin: whose they are is unknown, so only an admin adds to them.
  if not origin and redis.call('EXISTS', spans) == 1 then origin = 'internal' end
  if origin == 'internal' or (origin == 'otlp' and owner) then
    refuse = not (admin or (caller ~= '' and caller == owner))
  elseif not origin and n > 0 then
    redis.call('HSET', meta, 'origin', 'otlp')
    if caller ~= '' then redis.call('HSET', meta, 'owner', caller) end
  end
end
local len = redis.call('HLEN', spans)
local flags, mine = {}, {}
if refuse then
  for i = 1, n do flags[i] = 'r' end
  return { len + redis.call('SCARD', dropped), redis.call('SCARD', dropped), table.concat(flags), 3 }
end
-- A re-priced trace (repriceTraceScript: its summary version ends in .5) has new calls in its stored spans, so a
-- copy held in memory is stale: it is read back and re-assembled at once, never deferred, until a summary is written.
local stored = redis.call('HGET', meta, 'v')
local repriced = stored and string.find(stored, '.', 1, true) ~= nil
local upToDate = not repriced and tonumber(ARGV[3]) == len + redis.call('SCARD', dropped)
local fresh = 0
for i = 11, #ARGV, 2 do
  local id = ARGV[i]
  if mine[id] or redis.call('HEXISTS', spans, id) == 1 then
    flags[#flags + 1] = '0'
  elseif len < cap then
    redis.call('HSET', spans, id, ARGV[i + 1])
    len = len + 1
    fresh = fresh + 1
    mine[id] = true
    flags[#flags + 1] = '1'
  elseif redis.call('SADD', dropped, id) == 1 then
    flags[#flags + 1] = 'd'
  else
    flags[#flags + 1] = 'D'
  end
end
local droppedCount = redis.call('SCARD', dropped)
for k = 1, 3 do redis.call('EXPIRE', KEYS[k], ttl) end
local version = len + droppedCount
if not repriced and len > immediate and fresh * 4 < len then
  if fresh > 0 then
    local t = redis.call('TIME')
    redis.call('ZADD', KEYS[4], 'NX', tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + tonumber(ARGV[9]) * math.ceil(len / immediate), ARGV[10])
  end
  return { version, droppedCount, table.concat(flags), fresh > 0 and 2 or 3 }
end
if upToDate then return { version, droppedCount, table.concat(flags), 0 } end
local out = { version, droppedCount, table.concat(flags), 1 }
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
 * Every key is the trace's or its partition's (one hash tag, one Cluster slot), and the script names no other: the
 * members set's entries are built from KEYS. The anomaly stream, one key outside the partitions, is XADDed by the
 * collector right after, from the new anomalies this returns.
 *
 * KEYS: 1 summary, 2 anomalies hash, 3 spans, 4 dropped, 5 idx:expiry, 6 members set,
 *       7 idx:start, 8 idx:cost, 9 idx:duration, 10 idx:status:ok, 11 idx:status:error,
 *       12 anomaly log, then nTags start-scored tag zsets the trace belongs to
 *       (idx:model:{model} per model, idx:research when it is a research's trace), then per anomaly
 *       (idx:anomaly:{type}, anomaly log by type)
 * ARGV: 1 traceId, 2 version, 3 summary json, 4 ttlSeconds, 5 startMs, 6 costUsd, 7 durationMs,
 *       8 status, 9 nTags, 10 nAnomalies, 11 spans below the depth limit,
 *       then per anomaly (field, json, member, detectedAtMs)
 * Returns: { summaryWritten (0/1), spans newly below the depth limit (counted once, by the writer
 *   that saw them first), index of each NEW anomaly... }
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
local deeper = 0
local current = tonumber(redis.call('HGET', KEYS[1], 'v') or '-1')
if tonumber(ARGV[2]) >= current then
  written = 1
  local deep = tonumber(ARGV[11])
  deeper = math.max(0, deep - tonumber(redis.call('HGET', KEYS[1], 'deep') or '0'))
  redis.call('HSET', KEYS[1], 'v', ARGV[2], 'json', ARGV[3], 'deep', deep)
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
for i = 1, nTags do index(KEYS[12 + i], 'LT', start) end
local out = { written, deeper }
for j = 0, nAnomalies - 1 do
  local a = 12 + j * 4
  local typeTraces, typeLog = KEYS[13 + nTags + j * 2], KEYS[14 + nTags + j * 2]
  index(typeTraces, 'LT', start)
  if redis.call('HSETNX', KEYS[2], ARGV[a], ARGV[a + 1]) == 1 then
    out[#out + 1] = j
    index(KEYS[12], 'NX', ARGV[a + 3], ARGV[a + 2])
    index(typeLog, 'NX', ARGV[a + 3], ARGV[a + 2])
  end
end
redis.call('ZADD', KEYS[5], 'GT', now + ttl * 1000, id)
for k = 1, 4 do redis.call('EXPIRE', KEYS[k], ttl) end
return out
`,
);

/**
 * Store a re-priced trace (POST /v1/admin/reprice): its spans whose call changed, its summary recomputed from every
 * stored span with the new table, and its index scores; only if no span arrived since it was read.
 *
 * The summary's version becomes the trace's version + 0.5: an assembly that read the spans before this (its version
 * is the trace's) can no longer overwrite the re-priced summary with the old prices, and the next span (version + 1)
 * writes as usual. insertSpansScript reads a trace whose version ends in .5 back from Redis instead of trusting a copy
 * held in memory. The same prices again change nothing (same bytes, same scores).
 *
 * KEYS: 1 spans, 2 dropped, 3 summary, 4 idx:start, 5 idx:cost, 6 idx:duration, 7 idx:status:ok, 8 idx:status:error
 *       (the trace's and its partition's: one slot)
 * ARGV: 1 version read (spans + dropped), 2 summary json, 3 startMs, 4 costUsd, 5 durationMs, 6 status, 7 traceId,
 *       then spanId1, json1, ...
 * Returns 1 written, 0 nothing to change (same summary, no span changed), -1 spans arrived since the read (read
 * it again), -2 the trace expired.
 *
 * The cost score is set as it is (a lower price lowers it; writeTraceScript only ever raises it); start and duration
 * move like writeTraceScript's, and status with the summary.
 */
export const repriceTraceScript = new RedisScript(
  "tracelane-reprice-trace",
  `
local id = ARGV[7]
local current = redis.call('HGET', KEYS[3], 'json')
if not current then return -2 end
if redis.call('HLEN', KEYS[1]) + redis.call('SCARD', KEYS[2]) ~= tonumber(ARGV[1]) then return -1 end
if current == ARGV[2] and #ARGV == 7 then return 0 end
for i = 8, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
redis.call('HSET', KEYS[3], 'v', ARGV[1] .. '.5', 'json', ARGV[2])
redis.call('ZADD', KEYS[4], 'LT', ARGV[3], id)
redis.call('ZADD', KEYS[5], ARGV[4], id)
redis.call('ZADD', KEYS[6], 'GT', ARGV[5], id)
if ARGV[6] == 'error' then
  redis.call('ZREM', KEYS[7], id)
  redis.call('ZADD', KEYS[8], ARGV[3], id)
else
  redis.call('ZREM', KEYS[8], id)
  redis.call('ZADD', KEYS[7], ARGV[3], id)
end
return 1
`,
);
