import type { ChainableCommander } from "ioredis";
import { ATTR_QUERY_CHARS, ATTR_RESEARCH_COMPLETED } from "@tracelane/pipeline";
import { batch, type RedisClient } from "@tracelane/runtime";
import { RedisScript } from "./redis-script.js";
import type { TraceKeys } from "./keys.js";
import type { SpanRecord } from "./types.js";

/**
 * The submit-time forecast's history: for each (stage, model), what the stage's calls on that model used in each of
 * the last `window` completed researches. One sample is one research (a fan-out stage's sample sums all its claims'
 * calls), so a percentile over samples is a percentile of the stage's cost per research. The trace-collector is the
 * only writer (from assembled traces); the api reads them at `POST /v1/research`. Both go through this module.
 */

/** Samples kept per (stage, model) by default (TRACELANE_FORECAST_WINDOW on the collector). */
export const FORECAST_WINDOW_DEFAULT = 200;
/** A list is forgotten a week after its last completed research. */
const FORECAST_TTL_SECONDS = 7 * 24 * 3600;
/** The most samples a reader takes from one list, whatever window its writer kept. */
const FORECAST_READ_MAX = 1_000;

/** One completed research's use of one stage on one model. */
export interface StageSample {
  /** Model calls (every attempt: a retried or thrown-away call was paid for). */
  calls: number;
  inputTokens: number;
  outputTokens: number;
  /** Of inputTokens, served from the provider's cache. */
  cachedInputTokens: number;
  /** Characters of the research question (tracelane.query.chars on the api's span); 0 when unknown. */
  queryChars: number;
  /**
   * The research trace the sample came from: the api joins the stages' lists on it to price whole researches.
   * Absent in samples recorded before it was kept (they are read, and just do not join).
   */
  traceId?: string;
}

/** A trace's samples, one per (stage, model) its calls ran on. */
export interface TraceSamples {
  stage: string;
  model: string;
  sample: StageSample;
}

/** `[calls, inputTokens, outputTokens, cachedInputTokens, queryChars, traceId?]` (older samples end after 4 or 5 numbers). */
const encode = (s: StageSample) =>
  JSON.stringify([s.calls, s.inputTokens, s.outputTokens, s.cachedInputTokens, s.queryChars, ...(s.traceId ? [s.traceId] : [])]);

const isCount = (n: unknown): n is number => typeof n === "number" && Number.isFinite(n) && n >= 0;

/** A stored sample, or undefined when it is not one. */
function decodeStageSample(raw: string): StageSample | undefined {
  try {
    const v = JSON.parse(raw) as unknown;
    if (!Array.isArray(v) || v.length < 4 || v.length > 6) return undefined;
    const numbers = v.slice(0, 5);
    const traceId = v[5] as unknown;
    if (!numbers.every(isCount) || (traceId !== undefined && (typeof traceId !== "string" || traceId === ""))) return undefined;
    const [calls, inputTokens, outputTokens, cachedInputTokens, queryChars = 0] = numbers as number[];
    return {
      calls: calls!,
      inputTokens: inputTokens!,
      outputTokens: outputTokens!,
      cachedInputTokens: cachedInputTokens!,
      queryChars,
      ...(traceId !== undefined ? { traceId } : {}),
    };
  } catch {
    return undefined;
  }
}

/**
 * The samples of a research trace, or undefined while it has not completed (no span carries
 * tracelane.research.completed). Calls with no stage (none of ours) are left out.
 */
export function forecastSamplesOf(
  spans: readonly SpanRecord[],
  stages: ReadonlyMap<string, string | undefined>,
): TraceSamples[] | undefined {
  if (!spans.some((s) => s.attributes[ATTR_RESEARCH_COMPLETED] === true)) return undefined;
  let queryChars = 0;
  for (const s of spans) {
    const v = s.attributes[ATTR_QUERY_CHARS];
    if (typeof v === "number" && Number.isFinite(v) && v > 0) queryChars = v;
  }
  const traceId = spans[0]?.traceId;
  const byPair = new Map<string, TraceSamples>();
  for (const s of spans) {
    const stage = stages.get(s.spanId);
    if (!s.call || stage === undefined) continue;
    const pair = `${stage}\t${s.call.model}`;
    let entry = byPair.get(pair);
    if (!entry) {
      const sample: StageSample = {
        calls: 0,
        inputTokens: 0,
        outputTokens: 0,
        cachedInputTokens: 0,
        queryChars,
        ...(traceId ? { traceId } : {}),
      };
      entry = { stage, model: s.call.model, sample };
      byPair.set(pair, entry);
    }
    entry.sample.calls++;
    entry.sample.inputTokens += s.call.inputTokens;
    entry.sample.outputTokens += s.call.outputTokens;
    entry.sample.cachedInputTokens += s.call.cachedInputTokens;
  }
  return [...byPair.values()];
}

/**
 * Hold a completed trace's samples until `settleAt` (late spans of other processes may still arrive; a later
 * assembly replaces them), unless they were recorded already.
 *
 * KEYS: the trace's summary hash, the partition's forecast:samples hash and forecast:pending zset (one slot)
 * ARGV: traceId, samples JSON, settleAt (epoch ms)
 */
export const holdForecastScript = new RedisScript(
  "tracelane-forecast-hold",
  `
if redis.call('HEXISTS', KEYS[1], 'fc') == 1 then return 0 end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[3], 'NX', ARGV[3], ARGV[1])
return 1
`,
);

/**
 * Take a settled trace's samples, once: the replica whose ZREM removes the entry gets them, marks the trace
 * recorded (summary field fc) and records them.
 *
 * KEYS: the trace's summary hash, forecast:samples, forecast:pending; ARGV: traceId
 */
export const takeForecastScript = new RedisScript(
  "tracelane-forecast-take",
  `
if redis.call('ZREM', KEYS[3], ARGV[1]) == 0 then return false end
local samples = redis.call('HGET', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('HSET', KEYS[1], 'fc', '1') end
return samples
`,
);

export const FORECAST_SCRIPTS = [holdForecastScript, takeForecastScript] as const;

/** Queue on a batch: hold `samples` of `traceId` until `settleAt`. */
export function queueHoldForecast(
  commands: ChainableCommander,
  keys: TraceKeys,
  traceId: string,
  samples: TraceSamples[],
  settleAt: number,
): void {
  const k = keys.of(traceId);
  holdForecastScript.queue(commands, [k.summary, k.forecastSamples, k.forecastPending], [traceId, JSON.stringify(samples), settleAt]);
}

/** Traces whose samples have settled by `now`, per partition (at most `limit` each). */
export function queueSettledForecasts(commands: ChainableCommander, keys: TraceKeys, now: number, limit: number): void {
  for (const part of keys.partitions) commands.zrangebyscore(part.forecastPending, "-inf", now, "LIMIT", 0, limit);
}

/** Queue on a batch: take the samples of a settled trace (reply: their JSON, or null when another replica took them). */
export function queueTakeForecast(commands: ChainableCommander, keys: TraceKeys, traceId: string): void {
  const k = keys.of(traceId);
  takeForecastScript.queue(commands, [k.summary, k.forecastSamples, k.forecastPending], [traceId]);
}

/** Parse a take's reply. */
export function parseTakenSamples(reply: unknown): TraceSamples[] {
  if (typeof reply !== "string") return [];
  try {
    const v = JSON.parse(reply) as TraceSamples[];
    return Array.isArray(v) ? v.filter((e) => typeof e?.stage === "string" && typeof e.model === "string" && e.sample) : [];
  } catch {
    return [];
  }
}

/** Queue on a batch: add each sample at the head of its (stage, model) list, keeping the newest `window`. */
export function queueRecordSamples(commands: ChainableCommander, keys: TraceKeys, samples: readonly TraceSamples[], window: number): void {
  for (const { stage, model, sample } of samples) {
    const key = keys.forecast(stage, model);
    commands.lpush(key, encode(sample));
    commands.ltrim(key, 0, window - 1);
    commands.expire(key, FORECAST_TTL_SECONDS);
  }
}

/** The newest `limit` samples of each (stage, model) pair, newest first: one LRANGE per pair (each its own slot). */
export async function readStageSamples(
  redis: RedisClient,
  keys: TraceKeys,
  pairs: readonly { stage: string; model: string }[],
  limit: number = FORECAST_WINDOW_DEFAULT,
): Promise<StageSample[][]> {
  const n = Math.max(1, Math.min(limit, FORECAST_READ_MAX));
  const replies = await batch(redis, (commands) => {
    for (const { stage, model } of pairs) commands.lrange(keys.forecast(stage, model), 0, n - 1);
  });
  return replies.map(([err, raw]) => {
    if (err) throw err;
    return ((raw as string[] | null) ?? []).map(decodeStageSample).filter((s): s is StageSample => s !== undefined);
  });
}
