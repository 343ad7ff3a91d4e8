import type { AnomalyType, TraceStatus } from "./types.js";

export const TRACE_PREFIX_DEFAULT = "tracelane:traces";
/** Every new anomaly is XADDed here (fields: type, traceId, anomaly = JSON). */
export const ANOMALY_STREAM_DEFAULT = "tracelane:anomalies";

/**
 * The collector's Redis key layout; nobody else spells these keys.
 *
 * Per trace (all with the trace TTL, refreshed whenever a span of the trace arrives):
 *   {p}:t:{traceId}:spans      HASH  spanId -> SpanRecord JSON
 *   {p}:t:{traceId}:dropped    SET   span ids refused over the per-trace cap
 *   {p}:t:{traceId}:summary    HASH  v (version = spans + dropped) , json (TraceSummary), deep (spans below the
 *                                    depth limit), origin (internal|otlp) and owner (key id): who may add OTLP spans
 *   {p}:t:{traceId}:anomalies  HASH  "{type}|{spanId}" -> Anomaly JSON (first detection wins)
 *
 * Indexes (no TTL; entries leave when the sweeper or a reader prunes an expired trace):
 *   {p}:idx:start / :cost / :duration      ZSET traceId, score = start ms / cost USD / duration ms
 *   {p}:idx:status:{ok|error}              ZSET traceId, score = start ms
 *   {p}:idx:model:{model}                  ZSET traceId, score = start ms
 *   {p}:idx:research                       ZSET traceId, score = start ms: traces of a research (a span has research.id)
 *   {p}:idx:anomaly:{type}                 ZSET traceId, score = start ms
 *   {p}:idx:expiry                         ZSET traceId, score = expiry epoch ms (drives pruning)
 *   {p}:idx:deferred                       ZSET traceId, score = when its deferred re-assembly is due (epoch ms);
 *                                               any collector replica assembles an entry left overdue by a dead one
 *   {p}:idx:members:{traceId}              SET  "{zsetKey}\t{member}" for the trace's model/research/anomaly index entries
 *   {p}:anomalies / {p}:anomalies:{type}   ZSET "{traceId}|{spanId}|{type}", score = detectedAt ms
 *
 * Adaptive baseline:
 *   {p}:baseline:{model}                   LIST recent call latencies (ms), newest first, capped
 */
export interface TraceKeys {
  readonly prefix: string;
  spans(traceId: string): string;
  dropped(traceId: string): string;
  summary(traceId: string): string;
  anomalies(traceId: string): string;
  /** The four per-trace keys, in the order [spans, dropped, summary, anomalies]. */
  perTrace(traceId: string): [string, string, string, string];
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
  members(traceId: string): string;
  readonly anomalyLog: string;
  anomalyLogByType(type: AnomalyType): string;
  baseline(model: string): string;
}

/** A lone surrogate (half of a UTF-16 pair, e.g. from a fuzzed or truncated span attribute). */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/**
 * Model names go into key names URL-encoded, so no separator or whitespace can appear. A lone surrogate, which
 * encodeURIComponent refuses (URIError), becomes U+FFFD: a span naming such a model is still stored.
 */
const seg = (s: string) => encodeURIComponent(s.replace(LONE_SURROGATE, "\uFFFD"));

export function traceKeys(prefix: string = TRACE_PREFIX_DEFAULT): TraceKeys {
  const p = prefix.replace(/:+$/, "");
  const t = (id: string) => `${p}:t:${id}`;
  return {
    prefix: p,
    spans: (id) => `${t(id)}:spans`,
    dropped: (id) => `${t(id)}:dropped`,
    summary: (id) => `${t(id)}:summary`,
    anomalies: (id) => `${t(id)}:anomalies`,
    perTrace: (id) => [`${t(id)}:spans`, `${t(id)}:dropped`, `${t(id)}:summary`, `${t(id)}:anomalies`],
    idxStart: `${p}:idx:start`,
    idxCost: `${p}:idx:cost`,
    idxDuration: `${p}:idx:duration`,
    idxExpiry: `${p}:idx:expiry`,
    idxDeferred: `${p}:idx:deferred`,
    idxStatus: (s) => `${p}:idx:status:${s}`,
    idxModel: (m) => `${p}:idx:model:${seg(m)}`,
    idxResearch: `${p}:idx:research`,
    idxAnomaly: (type) => `${p}:idx:anomaly:${type}`,
    members: (id) => `${p}:idx:members:${id}`,
    anomalyLog: `${p}:anomalies`,
    anomalyLogByType: (type) => `${p}:anomalies:${type}`,
    baseline: (m) => `${p}:baseline:${seg(m)}`,
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
