import { hashTag, type RedisClient } from "@tracelane/runtime";

/** One quota: at most `limit` requests per `windowMs`, spread evenly (GCRA), with a burst of up to `limit`. */
export interface RatePolicy {
  /** Its name in the RateLimit-Policy and RateLimit fields and in the Redis key. */
  name: string;
  limit: number;
  windowMs: number;
}

/** A policy's state after a request. */
export interface PolicyState {
  policy: RatePolicy;
  /** Requests it would still admit now. */
  remaining: number;
  /** Until its whole quota is available again, ms. */
  resetMs: number;
}

export type RateDecision =
  | { allowed: true; states: PolicyState[] }
  /** `retryAfterMs`: until every refusing policy admits one more request. */
  | { allowed: false; states: PolicyState[]; retryAfterMs: number; refusedBy: RatePolicy[] };

/**
 * GCRA (the generic cell rate algorithm, as in redis-cell and throttled) over every policy of a
 * request in one atomic step. Each key holds the policy's theoretical arrival time (TAT, epoch ms): a
 * request is admitted when `max(TAT, now) + interval - window <= now`, and then moves TAT by one
 * interval (window / limit, rounded up to a whole ms; the window is `limit` such intervals). It is a sliding window without buckets: no
 * double burst at a window's edge, one small key per subject and policy, expiring when it is full again.
 *
 * A request is admitted only if every policy admits it, and then counts against all of them; a
 * refused request counts against none (a client retrying too early is not pushed further back).
 *
 * KEYS: one per policy. ARGV[1]: now in epoch ms, or "" to take Redis's clock (one clock for every
 * api replica); then limit and window ms per key. Returns {allowed, retryAfterMs, then per key:
 * remaining, resetMs, refused (1/0)}.
 */
const GCRA_SCRIPT = `
local now = tonumber(ARGV[1])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local tats, intervals, windows, refused = {}, {}, {}, {}
local allowed, retry = 1, 0
for i = 1, #KEYS do
  local limit = tonumber(ARGV[2 * i])
  local interval = math.ceil(tonumber(ARGV[2 * i + 1]) / limit)
  -- The window of whole intervals (at most limit - 1 ms longer), so a burst of exactly \`limit\` fits.
  local window = interval * limit
  local tat = tonumber(redis.call('GET', KEYS[i]) or now)
  if tat < now then tat = now end
  local allowAt = tat + interval - window
  refused[i] = 0
  if allowAt > now then
    allowed = 0
    refused[i] = 1
    if allowAt - now > retry then retry = allowAt - now end
  end
  tats[i], intervals[i], windows[i] = tat, interval, window
end
local out = {allowed, retry}
for i = 1, #KEYS do
  local tat = tats[i]
  if allowed == 1 then
    tat = tat + intervals[i]
    redis.call('SET', KEYS[i], tat, 'PX', tat - now)
  end
  local remaining = math.floor((now + windows[i] - tat) / intervals[i])
  if remaining < 0 then remaining = 0 end
  table.insert(out, remaining)
  table.insert(out, tat - now)
  table.insert(out, refused[i])
end
return out
`;

interface GcraRedis {
  tracelaneRateLimit(...args: Array<string | number>): Promise<number[]>;
}

export interface RateLimiterOptions {
  /** Key prefix (TRACELANE_RATE_LIMIT_PREFIX); api replicas sharing it share their limits. */
  prefix: string;
  /** The clock in epoch ms; default Redis's own (TIME), so replicas never disagree. Tests pass a manual clock. */
  now?: () => number;
}

/** Per-subject rate limits in Redis, shared by every api replica using the same prefix. */
export class RateLimiter {
  private readonly redis: GcraRedis;

  constructor(
    redis: RedisClient,
    private readonly opts: RateLimiterOptions,
  ) {
    // defineCommand per connection: EVALSHA, reloading the script after a Redis restart (NOSCRIPT).
    if (!(redis as unknown as Partial<GcraRedis>).tracelaneRateLimit) {
      redis.defineCommand("tracelaneRateLimit", { lua: GCRA_SCRIPT });
    }
    this.redis = redis as unknown as GcraRedis;
  }

  /** Count one request of `subject` against `policies` (at least one), atomically. */
  async take(subject: string, policies: readonly RatePolicy[]): Promise<RateDecision> {
    // One hash tag per subject: the script takes all of a subject's policies at once, so on a Redis Cluster they share a slot.
    const keys = policies.map((p) => `${this.opts.prefix}:${hashTag(subject)}:${p.name}`);
    const args = policies.flatMap((p) => [p.limit, p.windowMs]);
    const now = this.opts.now ? String(Math.floor(this.opts.now())) : "";
    const [allowed, retryAfterMs, ...perPolicy] = await this.redis.tracelaneRateLimit(keys.length, ...keys, now, ...args);
    const states: PolicyState[] = [];
    const refusedBy: RatePolicy[] = [];
    policies.forEach((policy, i) => {
      states.push({ policy, remaining: perPolicy[3 * i]!, resetMs: perPolicy[3 * i + 1]! });
      if (perPolicy[3 * i + 2] === 1) refusedBy.push(policy);
    });
    return allowed === 1 ? { allowed: true, states } : { allowed: false, states, retryAfterMs: retryAfterMs!, refusedBy };
  }
}

/** Whole seconds, rounded up (a client waiting this long is never early). */
export const ceilSeconds = (ms: number) => Math.max(0, Math.ceil(ms / 1000));

/**
 * The fields of draft-ietf-httpapi-ratelimit-headers (-08 and later): `RateLimit-Policy` lists each
 * policy that applies to this request (`"api";q=600;w=60`), `RateLimit` its live state
 * (`"api";r=599;t=1`: r requests remaining, t seconds until the whole quota is back).
 */
export function rateLimitFields(states: readonly PolicyState[]): { policy: string; state: string } {
  return {
    policy: states.map((s) => `"${s.policy.name}";q=${s.policy.limit};w=${ceilSeconds(s.policy.windowMs)}`).join(", "),
    state: states.map((s) => `"${s.policy.name}";r=${s.remaining};t=${ceilSeconds(s.resetMs)}`).join(", "),
  };
}
