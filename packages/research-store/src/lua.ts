import { RESEARCH_STATUSES } from "./schemas.js";

// Lua keeps each state change, its event and the indexes atomic: a reader never sees a status
// without its event or a list without the change, and nothing moves a research out of a final state.

/**
 * `reindex(id)`: the research goes into the index of the status it has now and out of the others,
 * scored by its createdAt in the all-researches index at KEYS[first] (the status indexes follow it,
 * in RESEARCH_STATUSES order; see researchIndexKeys). A research missing from that index (created
 * before it existed) is left alone.
 */
const reindexAt = (first: number) => `local INDEX_STATUSES = { ${RESEARCH_STATUSES.map((s) => `'${s}'`).join(", ")} }
local function reindex(id)
  local score = redis.call('ZSCORE', KEYS[${first}], id)
  if not score then return end
  local current = redis.call('HGET', KEYS[1], 'status')
  for i, s in ipairs(INDEX_STATUSES) do
    if s == current then redis.call('ZADD', KEYS[${first} + i], score, id) else redis.call('ZREM', KEYS[${first} + i], id) end
  end
end`;
/** The transitions take the index keys after record and events. */
const REINDEX = reindexAt(3);

/** Every transition's opening: -1 when the research is missing, 0 (nothing written) once it is final. */
const UNLESS_FINAL = `local status = redis.call('HGET', KEYS[1], 'status')
if not status then return -1 end
if status == 'completed' or status == 'failed' or status == 'cancelled' then return 0 end`;

/**
 * KEYS: record, events, owner index (== record when no owner), index keys of the research's partition (all, then
 * one per status). ARGV: ttl, id, eventJson, createdAtMs, field/value pairs...
 * Returns 'exists' (nothing written) when the record is there already: a replayed create whose first try wrote it.
 * Index entries created more than the TTL ago are trimmed here: their records, untouched for that long or longer,
 * are gone or about to go. The Idempotency-Key and the trace's owner are claimed around this script (SET NX), not
 * in it: they are keyed by what a reader knows (the key, the trace id), so they live in other slots.
 */
export const CREATE_SCRIPT = `
${reindexAt(4)}
if redis.call('EXISTS', KEYS[1]) == 1 then return 'exists' end
for i = 5, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
redis.call('XADD', KEYS[2], 'MAXLEN', '~', 1000, '*', 'type', 'research.queued', 'data', ARGV[3])
local cutoff = tonumber(ARGV[4]) - tonumber(ARGV[1]) * 1000
for i = 4, #KEYS do redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', '(' .. cutoff) end
redis.call('ZADD', KEYS[4], ARGV[4], ARGV[2])
reindex(ARGV[2])
if KEYS[3] ~= KEYS[1] then
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', '(' .. cutoff)
  redis.call('ZADD', KEYS[3], ARGV[4], ARGV[2])
  redis.call('EXPIRE', KEYS[3], ARGV[1])
end
redis.call('EXPIRE', KEYS[1], ARGV[1])
redis.call('EXPIRE', KEYS[2], ARGV[1])
return 'created'
`;

/**
 * A model call's cost goes on its spender's daily total in the same step that records it on the
 * research: KEYS[#KEYS] is the daily spend key (== KEYS[1] when nobody is charged), ARGV[spendAt]
 * the cost in whole nano-dollars, ARGV[spendAt + 1] the key's TTL in seconds.
 */
const chargeSpend = (spendAt: number) => `if KEYS[#KEYS] ~= KEYS[1] and tonumber(ARGV[${spendAt}]) > 0 then
  redis.call('INCRBY', KEYS[#KEYS], ARGV[${spendAt}])
  redis.call('EXPIRE', KEYS[#KEYS], ARGV[${spendAt + 1}])
end`;

/**
 * KEYS: record, events, index keys, daily spend key (== record for none). ARGV: ttl, eventType
 * ('' for none), eventJson, id, guardField ('' for none), spendNanoUsd, spendTtl, field/value pairs...
 * Returns 1 when applied, 0 when the research is already final, -1 when it does not exist,
 * 2 when guardField is already set (someone else did this first: first writer wins; nothing is charged).
 */
export const UPDATE_SCRIPT = `
${REINDEX}
${UNLESS_FINAL}
if ARGV[5] ~= '' and redis.call('HEXISTS', KEYS[1], ARGV[5]) == 1 then return 2 end
for i = 8, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
${chargeSpend(6)}
reindex(ARGV[4])
if ARGV[2] ~= '' then
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', 1000, '*', 'type', ARGV[2], 'data', ARGV[3])
end
redis.call('EXPIRE', KEYS[1], ARGV[1])
redis.call('EXPIRE', KEYS[2], ARGV[1])
return 1
`;

/**
 * A stage attempt starts: read and transition in one round trip (the worker needs the whole
 * record anyway). The stage runs on the research's own model for it, else the worker's; the
 * stage record keeps the first attempt's start and queue wait, counts attempts and drops the
 * last attempt's error.
 *
 * KEYS: record, events, index keys. ARGV: ttl, stage, worker's model, attempt, queueWaitMs,
 * now (ISO), id.
 * Returns {-1} when the research does not exist; otherwise {code, hash field/value pairs}: 0 it
 * is final (nothing written), 3 the stage's output is already checkpointed (nothing written),
 * 1 started.
 */
export const START_STAGE_SCRIPT = `
${REINDEX}
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return { -1 } end
if status == 'completed' or status == 'failed' or status == 'cancelled' then
  return { 0, redis.call('HGETALL', KEYS[1]) }
end
local stage, now, attempt = ARGV[2], ARGV[6], tonumber(ARGV[4])
if redis.call('HEXISTS', KEYS[1], 'output.' .. stage) == 1 then
  return { 3, redis.call('HGETALL', KEYS[1]) }
end
local model = ARGV[3]
local rawOptions = redis.call('HGET', KEYS[1], 'options')
if rawOptions then
  local ok, options = pcall(cjson.decode, rawOptions)
  if ok and type(options) == 'table' and type(options.models) == 'table' and type(options.models[stage]) == 'string' then
    model = options.models[stage]
  end
end
local rec = { status = 'pending', attempts = 0 }
local rawRec = redis.call('HGET', KEYS[1], 'stage.' .. stage)
if rawRec then rec = cjson.decode(rawRec) end
rec['error'] = nil
rec.status = 'running'
rec.model = model
rec.attempts = attempt
if rec.startedAt == nil or rec.startedAt == cjson.null then rec.startedAt = now end
if rec.queueWaitMs == nil or rec.queueWaitMs == cjson.null then rec.queueWaitMs = tonumber(ARGV[5]) end
redis.call('HSET', KEYS[1], 'stage.' .. stage, cjson.encode(rec), 'status', 'running', 'stage', stage, 'updatedAt', now)
reindex(ARGV[7])
local event = cjson.encode({ status = 'running', stage = stage, at = now, attempt = attempt, model = model })
redis.call('XADD', KEYS[2], 'MAXLEN', '~', 1000, '*', 'type', 'stage.started', 'data', event)
redis.call('EXPIRE', KEYS[1], ARGV[1])
redis.call('EXPIRE', KEYS[2], ARGV[1])
return { 1, redis.call('HGETALL', KEYS[1]) }
`;

/**
 * An attempt failed and BullMQ will retry the stage: the stage goes back to queued with the
 * attempt's error, and the event carries the research's status as this script reads it.
 *
 * KEYS: record, events, index keys. ARGV: ttl, id, stage, errorJson, attempt, now (ISO).
 * Returns 1 applied, 0 final (nothing written), -1 missing, 2 another attempt already checkpointed
 * the stage (nothing written: its record stands).
 */
export const STAGE_RETRYING_SCRIPT = `
${REINDEX}
${UNLESS_FINAL}
local stage, now = ARGV[3], ARGV[6]
if redis.call('HEXISTS', KEYS[1], 'output.' .. stage) == 1 then return 2 end
local err = cjson.decode(ARGV[4])
local rec = { status = 'pending', attempts = 0 }
local rawRec = redis.call('HGET', KEYS[1], 'stage.' .. stage)
if rawRec then rec = cjson.decode(rawRec) end
rec.status = 'queued'
rec['error'] = err
redis.call('HSET', KEYS[1], 'stage.' .. stage, cjson.encode(rec), 'updatedAt', now)
reindex(ARGV[2])
local event = cjson.encode({ status = status, stage = stage, at = now, attempt = tonumber(ARGV[5]), ['error'] = err })
redis.call('XADD', KEYS[2], 'MAXLEN', '~', 1000, '*', 'type', 'stage.retrying', 'data', event)
redis.call('EXPIRE', KEYS[1], ARGV[1])
redis.call('EXPIRE', KEYS[2], ARGV[1])
return 1
`;

/**
 * The research fails: status, error and (when the error names one) the stage's record, in one step.
 *
 * KEYS: record, events, index keys. ARGV: ttl, id, errorJson ({stage, type, message}), now (ISO).
 * Returns 1 applied, 0 final (nothing written), -1 missing, 2 another attempt already checkpointed
 * the failing stage (nothing written: the research carries on from that checkpoint).
 */
export const FAIL_SCRIPT = `
${REINDEX}
${UNLESS_FINAL}
local now = ARGV[4]
local err = cjson.decode(ARGV[3])
local stage = nil
if type(err.stage) == 'string' and err.stage ~= '' then stage = err.stage end
if stage and redis.call('HEXISTS', KEYS[1], 'output.' .. stage) == 1 then return 2 end
redis.call('HSET', KEYS[1], 'status', 'failed', 'finishedAt', now, 'error', ARGV[3], 'updatedAt', now)
if stage then
  local rec = { status = 'pending', attempts = 0 }
  local rawRec = redis.call('HGET', KEYS[1], 'stage.' .. stage)
  if rawRec then rec = cjson.decode(rawRec) end
  rec.status = 'failed'
  rec.finishedAt = now
  rec['error'] = { type = err.type, message = err.message }
  redis.call('HSET', KEYS[1], 'stage.' .. stage, cjson.encode(rec))
end
reindex(ARGV[2])
local event = cjson.encode({ status = 'failed', stage = stage, at = now, ['error'] = err })
redis.call('XADD', KEYS[2], 'MAXLEN', '~', 1000, '*', 'type', 'research.failed', 'data', event)
redis.call('EXPIRE', KEYS[1], ARGV[1])
redis.call('EXPIRE', KEYS[2], ARGV[1])
return 1
`;

/**
 * Cancel unless final: a stage that is running becomes cancelled (its worker records the cost of
 * the call it was making, see STAGE_CALL_AFTER_CANCEL_SCRIPT); stages not started or waiting for a
 * retry become skipped; completed and failed stages stay.
 *
 * KEYS: record, events, index keys. ARGV: ttl, id, now (ISO), stage names...
 * Returns 1 applied, 0 final (nothing written), -1 missing.
 */
export const CANCEL_SCRIPT = `
${REINDEX}
${UNLESS_FINAL}
local now = ARGV[3]
for i = 4, #ARGV do
  local field = 'stage.' .. ARGV[i]
  local rawRec = redis.call('HGET', KEYS[1], field)
  if rawRec then
    local rec = cjson.decode(rawRec)
    if rec.status == 'running' then
      rec.status = 'cancelled'
      rec.finishedAt = now
      redis.call('HSET', KEYS[1], field, cjson.encode(rec))
    elseif rec.status ~= 'completed' and rec.status ~= 'failed' and rec.status ~= 'skipped' then
      rec.status = 'skipped'
      redis.call('HSET', KEYS[1], field, cjson.encode(rec))
    end
  end
end
redis.call('HSET', KEYS[1], 'status', 'cancelled', 'finishedAt', now, 'updatedAt', now)
reindex(ARGV[2])
local event = cjson.encode({ status = 'cancelled', at = now })
redis.call('XADD', KEYS[2], 'MAXLEN', '~', 1000, '*', 'type', 'research.cancelled', 'data', event)
redis.call('EXPIRE', KEYS[1], ARGV[1])
redis.call('EXPIRE', KEYS[2], ARGV[1])
return 1
`;

/**
 * A model call that finished after its research was cancelled: its usage and cost go on the
 * cancelled stage (money spent is money spent), once. No event: the stream ended at
 * research.cancelled.
 *
 * KEYS: record, daily spend key (== record for none). ARGV: ttl, stage, patchJson (model, usage,
 * costUsd, latencyMs), now (ISO), spendNanoUsd, spendTtl.
 * Returns 1 applied, 0 not a cancelled stage of a cancelled research, -1 missing, 2 already recorded.
 */
export const STAGE_CALL_AFTER_CANCEL_SCRIPT = `
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return -1 end
if status ~= 'cancelled' then return 0 end
local field = 'stage.' .. ARGV[2]
local rawRec = redis.call('HGET', KEYS[1], field)
if not rawRec then return 0 end
local rec = cjson.decode(rawRec)
if rec.status ~= 'cancelled' then return 0 end
if rec.usage ~= nil and rec.usage ~= cjson.null then return 2 end
for k, v in pairs(cjson.decode(ARGV[3])) do rec[k] = v end
redis.call('HSET', KEYS[1], field, cjson.encode(rec), 'updatedAt', ARGV[4])
${chargeSpend(5)}
redis.call('EXPIRE', KEYS[1], ARGV[1])
return 1
`;

/**
 * A claim check that finished after its research was cancelled: its record (usage and cost) is written
 * anyway (money spent is money spent), once (unless its done field is set). No event: the stream ended at
 * research.cancelled.
 *
 * KEYS: record, daily spend key (== record for none). ARGV: ttl, claim field, done field, claimJson, now (ISO),
 * spendNanoUsd, spendTtl. Returns 1 applied, 0 not cancelled, -1 missing, 2 already written.
 */
export const CLAIM_AFTER_CANCEL_SCRIPT = `
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return -1 end
if status ~= 'cancelled' then return 0 end
if redis.call('HEXISTS', KEYS[1], ARGV[3]) == 1 then return 2 end
redis.call('HSET', KEYS[1], ARGV[2], ARGV[4], ARGV[3], '1', 'updatedAt', ARGV[5])
${chargeSpend(6)}
redis.call('EXPIRE', KEYS[1], ARGV[1])
return 1
`;

/**
 * Add what a stage attempt paid for and threw away to the research (and the spender's day), atomically.
 *
 * KEYS: record, daily spend key (== record for none). ARGV: ttl, nanoUsd field, nanoUsd, input field, input,
 * output field, output, cached field, cached, spendTtl. Returns 1, or -1 when the research does not exist.
 */
export const STAGE_WASTED_SCRIPT = `
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
for i = 2, 8, 2 do
  if tonumber(ARGV[i + 1]) > 0 then redis.call('HINCRBY', KEYS[1], ARGV[i], ARGV[i + 1]) end
end
if KEYS[2] ~= KEYS[1] and tonumber(ARGV[3]) > 0 then
  redis.call('INCRBY', KEYS[2], ARGV[3])
  redis.call('EXPIRE', KEYS[2], ARGV[10])
end
redis.call('EXPIRE', KEYS[1], ARGV[1])
return 1
`;

/**
 * Store a research's re-priced costs (RepricedCosts JSON), only once it has finished: a running research's stages
 * are still being charged. KEYS: 1 record. ARGV: 1 the JSON.
 * Returns 0 no such research, 1 not finished (nothing written), 2 already these costs, 3 written.
 */
export const REPRICE_SCRIPT = `
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return 0 end
if status ~= 'completed' and status ~= 'failed' and status ~= 'cancelled' then return 1 end
if redis.call('HGET', KEYS[1], 'repriced') == ARGV[1] then return 2 end
redis.call('HSET', KEYS[1], 'repriced', ARGV[1])
return 3
`;
