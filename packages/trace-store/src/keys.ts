import { partitionOf, partitionTags } from "@tracelane/runtime";
import { TRACE_STATUSES, type AnomalyType, type TraceStatus } from "./types.js";

export const TRACE_PREFIX_DEFAULT = "tracelane:traces";
/** Every new anomaly is XADDed here (fields: type, traceId, anomaly = JSON). */
export const ANOMALY_STREAM_DEFAULT = "tracelane:anomalies";

/**
 * Traces are spread over this many partitions by trace id (runtime's partitionOf). A partition's traces and its
 * indexes share one hash tag, so every script over a trace and the indexes it updates stays in one Redis Cluster
 * slot, and the partitions spread over the cluster's masters; readers of an index merge the partitions. Changing it
 * orphans stored traces (their keys move): it is part of the layout, not a setting.
 */
export const TRACE_PARTITIONS = 16;

/**
 * The collector's Redis key layout; nobody else spells these keys. `{t<k>}` is partition k's hash tag
 * (`partitionTags("t", TRACE_PARTITIONS)[k]`), k = partitionOf(traceId, TRACE_PARTITIONS).
 *
 * Per trace (all with the trace TTL, refreshed whenever a span of the trace arrives):
 *   {p}:{t<k>}:t:{traceId}:spans      HASH  spanId -> SpanRecord JSON
 *   {p}:{t<k>}:t:{traceId}:dropped    SET   span ids refused over the per-trace cap
 *   {p}:{t<k>}:t:{traceId}:summary    HASH  v (version = spans + dropped) , json (TraceSummary), deep (spans below
 *                                           the depth limit), origin (internal|otlp) and owner (key id): who may add OTLP spans
 *   {p}:{t<k>}:t:{traceId}:anomalies  HASH  "{type}|{spanId}" -> Anomaly JSON (first detection wins)
 *
 * Indexes, one per partition listing only that partition's traces (no TTL; entries leave when the sweeper or a
 * reader prunes an expired trace):
 *   {p}:{t<k>}:idx:start / :cost / :duration      ZSET traceId, score = start ms / cost USD / duration ms
 *   {p}:{t<k>}:idx:status:{ok|error}              ZSET traceId, score = start ms
 *   {p}:{t<k>}:idx:model:{model}                  ZSET traceId, score = start ms
 *   {p}:{t<k>}:idx:research                       ZSET traceId, score = start ms: traces of a research (a span has research.id)
 *   {p}:{t<k>}:idx:anomaly:{type}                 ZSET traceId, score = start ms
 *   {p}:{t<k>}:idx:expiry                         ZSET traceId, score = expiry epoch ms (drives pruning)
 *   {p}:{t<k>}:idx:deferred                       ZSET traceId, score = when its deferred re-assembly is due (epoch ms);
 *                                                      any collector replica assembles an entry left overdue by a dead one
 *   {p}:{t<k>}:idx:members:{traceId}              SET  "{zsetKey}\t{member}" for the trace's model/research/anomaly index
 *                                                      entries (every zsetKey is of the trace's partition)
 *   {p}:{t<k>}:anomalies / :anomalies:{type}      ZSET "{traceId}|{spanId}|{type}", score = detectedAt ms
 *
 * Adaptive baseline (one key per command, read and written outside the scripts: no partition):
 *   {p}:baseline:{model}                          LIST recent call latencies (ms), newest first, capped
 *
 * Submit-time forecast (forecast.ts): the collector writes, the api reads.
 *   {p}:{f:{stage}:{model}}:tokens                LIST one completed research's totals of the stage's calls on that
 *                                                      model (JSON [calls, input, output, cached, queryChars]), newest
 *                                                      first, capped at the window, TTL a week; its own hash tag
 *   {p}:{t<k>}:forecast:pending                   ZSET traceId, score = when its samples settle (epoch ms)
 *   {p}:{t<k>}:forecast:samples                   HASH traceId -> the trace's samples (JSON), until they settle
 *   (the trace's summary hash gets field `fc` once its samples were recorded, so they are recorded once)
 *
 * A prefix may not contain `{` or `}`: the first hash tag of a key decides its slot, and it must be the partition's.
 */
export interface PartitionKeys {
  /** 0..TRACE_PARTITIONS-1. */
  readonly partition: number;
  /** `{p}:{t<k>}:`: every key of the partition starts with it, and so hashes to the partition's slot. */
  readonly base: string;
  /** `{p}:{t<k>}:t:`: what every per-trace key of the partition starts with. */
  readonly perTraceBase: string;
  readonly idxStart: string;
  readonly idxCost: string;
  readonly idxDuration: string;
  readonly idxExpiry: string;
  readonly idxDeferred: string;
  idxStatus(status: TraceStatus): string;
  idxModel(model: string): string;
  /** Traces that belong to a research (their summary has a researchId). */
  readonly idxResearch: string;
  idxAnomaly(type: AnomalyType): string;
  /** The indexes every trace of the partition is in (start, cost, duration, then one per status): what pruning clears. */
  readonly fixedIndexes: readonly string[];
  readonly anomalyLog: string;
  anomalyLogByType(type: AnomalyType): string;
  /** Completed research traces whose forecast samples wait for late spans (score: when they settle). */
  readonly forecastPending: string;
  /** traceId -> its forecast samples (JSON) while pending. */
  readonly forecastSamples: string;
}

/** One trace's keys, beside the indexes of its partition. */
export interface OneTraceKeys extends PartitionKeys {
  readonly spans: string;
  readonly dropped: string;
  readonly summary: string;
  readonly anomalies: string;
  readonly members: string;
  /** The four per-trace keys, in the order [spans, dropped, summary, anomalies]. */
  readonly perTrace: readonly [string, string, string, string];
}

export interface TraceKeys {
  readonly prefix: string;
  /** The keys of `traceId` and its partition's indexes. */
  of(traceId: string): OneTraceKeys;
  /** Every partition's index keys, in partition order: what readers merge and the sweeper walks. */
  readonly partitions: readonly PartitionKeys[];
  baseline(model: string): string;
  /** The forecast's token window of one stage on one model (its own hash tag: one slot per list). */
  forecast(stage: string, model: string): string;
}

/** A lone surrogate (half of a UTF-16 pair, e.g. from a fuzzed or truncated span attribute). */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/**
 * Model names go into key names URL-encoded, so no separator, whitespace or brace can appear. A lone surrogate,
 * which encodeURIComponent refuses (URIError), becomes U+FFFD: a span naming such a model is still stored.
 */
const seg = (s: string) => encodeURIComponent(s.replace(LONE_SURROGATE, "\uFFFD"));

/** Which partition a trace lives in. */
export const tracePartition = (traceId: string) => partitionOf(traceId, TRACE_PARTITIONS);

function partitionKeys(p: string, partition: number): PartitionKeys {
  const base = `${p}:${partitionTags("t", TRACE_PARTITIONS)[partition]!}:`;
  const idx = `${base}idx:`;
  const idxStatus = (s: TraceStatus) => `${idx}status:${s}`;
  return {
    partition,
    base,
    perTraceBase: `${base}t:`,
    idxStart: `${idx}start`,
    idxCost: `${idx}cost`,
    idxDuration: `${idx}duration`,
    idxExpiry: `${idx}expiry`,
    idxDeferred: `${idx}deferred`,
    idxStatus,
    idxModel: (m) => `${idx}model:${seg(m)}`,
    idxResearch: `${idx}research`,
    idxAnomaly: (type) => `${idx}anomaly:${type}`,
    fixedIndexes: [`${idx}start`, `${idx}cost`, `${idx}duration`, ...TRACE_STATUSES.map(idxStatus)],
    anomalyLog: `${base}anomalies`,
    anomalyLogByType: (type) => `${base}anomalies:${type}`,
    forecastPending: `${base}forecast:pending`,
    forecastSamples: `${base}forecast:samples`,
  };
}

export function traceKeys(prefix: string = TRACE_PREFIX_DEFAULT): TraceKeys {
  const p = prefix.replace(/:+$/, "");
  if (/[{}]/.test(p)) {
    throw new RangeError(
      `trace key prefix "${p}" contains a brace: it would decide the keys' Redis Cluster slot instead of their partition`,
    );
  }
  const partitions = Array.from({ length: TRACE_PARTITIONS }, (_, k) => partitionKeys(p, k));
  return {
    prefix: p,
    partitions,
    of(traceId) {
      const part = partitions[tracePartition(traceId)]!;
      const t = `${part.perTraceBase}${traceId}:`;
      const perTrace = [`${t}spans`, `${t}dropped`, `${t}summary`, `${t}anomalies`] as const;
      const [spans, dropped, summary, anomalies] = perTrace;
      return { ...part, spans, dropped, summary, anomalies, members: `${part.base}idx:members:${traceId}`, perTrace };
    },
    baseline: (m) => `${p}:baseline:${seg(m)}`,
    forecast: (stage, m) => `${p}:{f:${seg(stage)}:${seg(m)}}:tokens`,
  };
}

/** Field of an anomaly in the per-trace anomalies hash; the dedupe key (type, spanId) within a trace. */
export const anomalyField = (type: AnomalyType, spanId: string) => `${type}|${spanId}`;
/** Member of the anomaly log zsets: the dedupe key (traceId, spanId, type). */
export const anomalyMember = (traceId: string, spanId: string, type: AnomalyType) => `${traceId}|${spanId}|${type}`;

export function parseAnomalyMember(member: string): { traceId: string; spanId: string; type: AnomalyType } | undefined {
  const parts = member.split("|");
  if (parts.length !== 3) return undefined;
  const [traceId, spanId, type] = parts as [string, string, AnomalyType];
  return { traceId, spanId, type };
}

/** Entry of a trace's members set: which index (zset) holds which member for it. */
export const memberEntry = (zsetKey: string, member: string) => `${zsetKey}\t${member}`;

export const TRACE_ID_RE = /^[0-9a-f]{32}$/;
