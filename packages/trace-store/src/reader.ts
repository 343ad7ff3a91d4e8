import { withCurrentNames } from "@tracelane/tracing/attributes";
import type { RedisClient } from "@tracelane/runtime";
import { anomalyField, parseAnomalyMember, traceKeys, type TraceKeys } from "./keys.js";
import { pruneTraces } from "./prune.js";
import { renderReplay } from "./replay.js";
import { aggregateCostStats } from "./stats.js";
import { buildTree, MAX_TRACE_DEPTH_DEFAULT, resolveStages, spanDepths } from "./tree.js";
import {
  ANOMALY_TYPES,
  type Anomaly,
  type AnomalyQuery,
  type AnomalyType,
  type CostStats,
  type CostStatsQuery,
  type SpanRecord,
  type TraceDetail,
  type TraceFilter,
  type TraceListItem,
  type TraceListPage,
  type TraceSort,
  type TraceSummary,
} from "./types.js";

export interface TraceReaderOptions {
  /** Key prefix the collector writes under (TRACELANE_TRACE_PREFIX). */
  prefix?: string;
  /** Most index entries one listTraces call examines before returning a cursor. */
  maxScan?: number;
  /** Most traces one costStats call aggregates (newest first); beyond it `truncated` is set. */
  maxStatsTraces?: number;
  /** Remove index entries of traces found expired while reading (default true). */
  pruneOnRead?: boolean;
}

/**
 * Which of these traces the caller may see (the api's ownership check: a member key sees the traces of
 * its own researches). Lists, anomalies and stats skip the others as if they were not stored.
 */
export type TraceVisibility = (traceIds: string[]) => Promise<boolean[]>;

/** Read options of a caller: without `visible`, every trace. */
export interface ReadScope {
  visible?: TraceVisibility | undefined;
}

export interface TraceReader {
  readonly keys: TraceKeys;
  listTraces(filter?: TraceFilter, scope?: ReadScope): Promise<TraceListPage>;
  getTrace(traceId: string): Promise<TraceDetail | undefined>;
  renderReplay(trace: TraceDetail): string;
  listAnomalies(query?: AnomalyQuery, scope?: ReadScope): Promise<Anomaly[]>;
  costStats(query?: CostStatsQuery, scope?: ReadScope): Promise<CostStats>;
  /** Per trace id: how many anomalies the collector found so far and their types (0 and [] for a trace it has not seen). */
  anomalyCounts(traceIds: string[]): Promise<{ count: number; types: AnomalyType[] }[]>;
}

/** A listTraces cursor that cannot be decoded or belongs to another sort order. */
export class InvalidCursorError extends Error {
  override readonly name = "InvalidCursorError";
  constructor(message = "cursor is not valid for this query; pass back nextCursor unchanged") {
    super(message);
  }
}

interface Cursor {
  s: TraceSort;
  k: number;
  i: string;
}

const encodeCursor = (c: Cursor) => Buffer.from(JSON.stringify(c)).toString("base64url");

function decodeCursor(text: string, sort: TraceSort): Cursor {
  let c: unknown;
  try {
    c = JSON.parse(Buffer.from(text, "base64url").toString("utf8"));
  } catch {
    throw new InvalidCursorError();
  }
  const ok =
    typeof c === "object" &&
    c !== null &&
    (c as Cursor).s === sort &&
    Number.isFinite((c as Cursor).k) &&
    typeof (c as Cursor).i === "string";
  if (!ok) throw new InvalidCursorError();
  return c as Cursor;
}

const DAY_MS = 24 * 3600 * 1000;

const iso = (ms: number) => new Date(ms).toISOString();
/** ISO 8601 beside epoch ms, for people reading the JSON. */
const withTimes = <T extends { startMs: number; endMs: number }>(r: T): T & { startedAt: string; endedAt: string } => ({
  ...r,
  startedAt: iso(r.startMs),
  endedAt: iso(r.endMs),
});
const typeOrder = (t: AnomalyType) => ANOMALY_TYPES.indexOf(t);

export function createTraceReader(redis: RedisClient, opts: TraceReaderOptions = {}): TraceReader {
  const keys = traceKeys(opts.prefix);
  const maxScan = opts.maxScan ?? 10_000;
  const maxStatsTraces = opts.maxStatsTraces ?? 50_000;
  const pruneOnRead = opts.pruneOnRead ?? true;

  /** The ids of `ids` the scope lets the caller see (all without a visibility check). */
  const visibleOf = async (scope: ReadScope, ids: string[]): Promise<Set<string>> => {
    if (!scope.visible || ids.length === 0) return new Set(ids);
    const verdicts = await scope.visible(ids);
    return new Set(ids.filter((_, i) => verdicts[i] === true));
  };

  const prune = async (ids: string[]) => {
    if (pruneOnRead && ids.length > 0) await pruneTraces(redis, ids, { prefix: keys.prefix, force: true });
  };

  const anomalyCounts = async (ids: string[]): Promise<{ count: number; types: AnomalyType[] }[]> => {
    if (ids.length === 0) return [];
    const p = redis.pipeline();
    for (const id of ids) p.hkeys(keys.anomalies(id));
    const replies = (await p.exec()) ?? [];
    return replies.map(([err, fields]) => {
      if (err) throw err;
      const found = fields as string[];
      const types = new Set(found.map((f) => f.slice(0, f.indexOf("|")) as AnomalyType));
      return { count: found.length, types: [...types].sort((a, b) => typeOrder(a) - typeOrder(b)) };
    });
  };

  /** Walk `key` from score `max` down to `min` (rank by rank), yielding (id, score) chunks. */
  async function* walkDesc(key: string, min: number, max: number, chunk: number) {
    let rank = max === Infinity ? 0 : await redis.zcount(key, `(${max}`, "+inf");
    for (;;) {
      const raw = await redis.zrange(key, rank, rank + chunk - 1, "REV", "WITHSCORES");
      if (raw.length === 0) return;
      rank += raw.length / 2;
      const out: { id: string; score: number }[] = [];
      let done = false;
      for (let i = 0; i < raw.length; i += 2) {
        const score = Number(raw[i + 1]);
        if (score < min) {
          done = true;
          break;
        }
        out.push({ id: raw[i]!, score });
      }
      if (out.length > 0) yield out;
      if (done) return;
    }
  }

  async function listTraces(filter: TraceFilter = {}, scope: ReadScope = {}): Promise<TraceListPage> {
    const limit = Math.min(Math.max(Math.trunc(filter.limit ?? 50), 1), 500);
    const sort = filter.sort ?? "start";
    const cursor = filter.cursor ? decodeCursor(filter.cursor, sort) : undefined;
    const researchOnly = filter.kind === "research";

    // Pick the most selective index whose order matches the requested sort.
    let key = keys.idxStart;
    let min: number;
    let max = Infinity;
    if (sort === "cost") {
      key = keys.idxCost;
      min = filter.minCostUsd ?? -Infinity;
    } else if (sort === "duration") {
      key = keys.idxDuration;
      min = filter.minDurationMs ?? -Infinity;
    } else {
      if (filter.anomaly) key = keys.idxAnomaly(filter.anomaly);
      else if (filter.model) key = keys.idxModel(filter.model);
      else if (researchOnly) key = keys.idxResearch;
      else if (filter.status) key = keys.idxStatus(filter.status);
      min = filter.since ?? -Infinity;
      max = filter.until ?? Infinity;
    }
    if (cursor) max = Math.min(max, cursor.k);
    const checkAnomalySet = filter.anomaly !== undefined && key !== keys.idxAnomaly(filter.anomaly);

    const matches = (s: TraceSummary) =>
      (filter.since === undefined || s.startMs >= filter.since) &&
      (filter.until === undefined || s.startMs <= filter.until) &&
      (filter.minCostUsd === undefined || s.costUsd >= filter.minCostUsd) &&
      (filter.minDurationMs === undefined || s.durationMs >= filter.minDurationMs) &&
      (filter.status === undefined || s.status === filter.status) &&
      (filter.model === undefined || s.models.includes(filter.model)) &&
      (!researchOnly || s.researchId !== undefined);

    const found: TraceSummary[] = [];
    const gone: string[] = [];
    const seen = new Set<string>();
    let scanned = 0;
    let nextCursor: string | undefined;
    const chunk = Math.min(Math.max(limit * 2, 100), 1000);

    walk: for await (const entries of walkDesc(key, min, max, chunk)) {
      const fresh = entries.filter((e) => !seen.has(e.id) && !(cursor && e.score === cursor.k && e.id >= cursor.i));
      if (fresh.length === 0) continue;
      const p = redis.pipeline();
      for (const e of fresh) {
        seen.add(e.id);
        p.hget(keys.summary(e.id), "json");
        if (checkAnomalySet) p.zscore(keys.idxAnomaly(filter.anomaly!), e.id);
      }
      const replies = (await p.exec()) ?? [];
      const stride = checkAnomalySet ? 2 : 1;
      // Per entry: undefined when its trace expired, null when it does not match the filter.
      const candidates = fresh.map((_, i): TraceSummary | null | undefined => {
        const [err, json] = replies[i * stride]!;
        if (err) throw err;
        if (typeof json !== "string") return undefined;
        const inAnomalySet = !checkAnomalySet || replies[i * stride + 1]![1] !== null;
        const summary = JSON.parse(json) as TraceSummary;
        return inAnomalySet && matches(summary) ? summary : null;
      });
      const visible = await visibleOf(
        scope,
        candidates.flatMap((c) => (c ? [c.traceId] : [])),
      );
      for (let i = 0; i < fresh.length; i++) {
        const e = fresh[i]!;
        const candidate = candidates[i];
        scanned++;
        if (candidate === undefined) gone.push(e.id);
        else if (candidate !== null && visible.has(candidate.traceId)) found.push(candidate);
        if (found.length === limit || scanned >= maxScan) {
          // Resume after the last entry examined (a page may end exactly at the last match).
          nextCursor = encodeCursor({ s: sort, k: e.score, i: e.id });
          break walk;
        }
      }
    }
    await prune(gone);
    const anomalies = await anomalyCounts(found.map((s) => s.traceId));
    const traces: TraceListItem[] = found.map((s, i) => ({ ...withTimes(s), anomalyTypes: anomalies[i]?.types ?? [] }));
    return nextCursor ? { traces, nextCursor } : { traces };
  }

  async function getTrace(traceId: string): Promise<TraceDetail | undefined> {
    const replies =
      (await redis.pipeline().hget(keys.summary(traceId), "json").hgetall(keys.spans(traceId)).hvals(keys.anomalies(traceId)).exec()) ?? [];
    const failed = replies.find(([err]) => err);
    if (failed) throw failed[0];
    const [json, spanMap, anomalyJson] = replies.map(([, v]) => v);
    if (typeof json !== "string") return undefined;
    const summary = JSON.parse(json) as TraceSummary;
    // Spans stored before our attributes were renamed read under the current names.
    const spans = Object.values(spanMap as Record<string, string>).map((s) => {
      const span = JSON.parse(s) as SpanRecord;
      return withTimes({ ...span, attributes: withCurrentNames(span.attributes) });
    });
    spans.sort((a, b) => a.startMs - b.startMs || (a.spanId < b.spanId ? -1 : 1));
    const anomalies = (anomalyJson as string[])
      .map((a) => JSON.parse(a) as Anomaly)
      .sort((a, b) => a.detectedAt.localeCompare(b.detectedAt) || typeOrder(a.type) - typeOrder(b.type));
    const anomalyTypes = [...new Set(anomalies.map((a) => a.type))].sort((a, b) => typeOrder(a) - typeOrder(b));
    // The collector's depth limit (older summaries: the default); spans below it are cut from both views.
    const maxDepth = summary.maxDepth ?? MAX_TRACE_DEPTH_DEFAULT;
    const depths = spanDepths(spans);
    const shown = spans.filter((s) => (depths.get(s.spanId) ?? 0) <= maxDepth);
    const tree = buildTree(shown, resolveStages(shown), maxDepth);
    return { summary: { ...withTimes(summary), anomalyTypes }, spans: shown, tree, anomalies };
  }

  async function listAnomalies(query: AnomalyQuery = {}, scope: ReadScope = {}): Promise<Anomaly[]> {
    const limit = Math.min(Math.max(Math.trunc(query.limit ?? 100), 1), 1000);
    const key = query.type ? keys.anomalyLogByType(query.type) : keys.anomalyLog;
    const min = query.since ?? -Infinity;
    const out: Anomaly[] = [];
    const gone = new Set<string>();
    for await (const entries of walkDesc(key, min, Infinity, Math.max(limit, 100))) {
      const members = entries.map((e) => parseAnomalyMember(e.id)).filter((m) => m !== undefined);
      const visible = await visibleOf(scope, [...new Set(members.map((m) => m.traceId))]);
      const parsed = members.filter((m) => visible.has(m.traceId));
      const p = redis.pipeline();
      for (const m of parsed) p.hget(keys.anomalies(m.traceId), anomalyField(m.type, m.spanId));
      const replies = (await p.exec()) ?? [];
      for (let i = 0; i < parsed.length; i++) {
        const [err, json] = replies[i]!;
        if (err) throw err;
        if (typeof json !== "string") {
          gone.add(parsed[i]!.traceId);
          continue;
        }
        out.push(JSON.parse(json) as Anomaly);
        if (out.length === limit) break;
      }
      if (out.length === limit) break;
    }
    await prune([...gone]);
    return out;
  }

  async function costStats(query: CostStatsQuery = {}, scope: ReadScope = {}): Promise<CostStats> {
    const until = query.until ?? Date.now();
    const since = query.since ?? until - DAY_MS;
    const kind = query.kind ?? "all";
    const summaries: TraceSummary[] = [];
    const gone: string[] = [];
    let truncated = false;
    walk: for await (const entries of walkDesc(kind === "research" ? keys.idxResearch : keys.idxStart, since, until, 500)) {
      const p = redis.pipeline();
      for (const e of entries) p.hget(keys.summary(e.id), "json");
      const replies = (await p.exec()) ?? [];
      const visible = await visibleOf(
        scope,
        entries.map((e) => e.id),
      );
      for (let i = 0; i < entries.length; i++) {
        const [err, json] = replies[i]!;
        if (err) throw err;
        if (typeof json !== "string") gone.push(entries[i]!.id);
        else if (visible.has(entries[i]!.id)) summaries.push(JSON.parse(json) as TraceSummary);
        else continue;
        if (summaries.length >= maxStatsTraces) {
          truncated = true;
          break walk;
        }
      }
    }
    await prune(gone);
    return aggregateCostStats(summaries, { since, until, kind, truncated });
  }

  return { keys, listTraces, getTrace, renderReplay, listAnomalies, costStats, anomalyCounts };
}
