// Lua keeps each state change and its event atomic: a reader never sees a
// status without its event, and nothing moves a research out of a final state.

/**
 * KEYS: record, events, idem (== record when no key), queued index.
 * ARGV: ttl, id, fingerprint, eventJson, createdAtMs, field/value pairs...
 */
export const CREATE_SCRIPT = `
if KEYS[3] ~= KEYS[1] then
  local existing = redis.call('GET', KEYS[3])
  if existing then return existing end
  redis.call('SET', KEYS[3], ARGV[2] .. '|' .. ARGV[3], 'EX', ARGV[1])
end
for i = 6, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
redis.call('XADD', KEYS[2], 'MAXLEN', '~', 1000, '*', 'type', 'research.queued', 'data', ARGV[4])
redis.call('ZADD', KEYS[4], ARGV[5], ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[1])
redis.call('EXPIRE', KEYS[2], ARGV[1])
return 'created'
`;

/**
 * KEYS: record, events, queued index. ARGV: ttl, eventType ('' for none), eventJson, id,
 * guardField ('' for none), field/value pairs...
 * Returns 1 when applied, 0 when the research is already final, -1 when it does not exist,
 * 2 when guardField is already set (someone else did this first: first writer wins).
 */
export const UPDATE_SCRIPT = `
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return -1 end
if status == 'completed' or status == 'failed' or status == 'cancelled' then return 0 end
if ARGV[5] ~= '' and redis.call('HEXISTS', KEYS[1], ARGV[5]) == 1 then return 2 end
for i = 6, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
if redis.call('HGET', KEYS[1], 'status') ~= 'queued' then redis.call('ZREM', KEYS[3], ARGV[4]) end
if ARGV[2] ~= '' then
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', 1000, '*', 'type', ARGV[2], 'data', ARGV[3])
end
redis.call('EXPIRE', KEYS[1], ARGV[1])
redis.call('EXPIRE', KEYS[2], ARGV[1])
return 1
`;
