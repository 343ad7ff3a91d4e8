import { withCurrentNames } from "@tracelane/tracing/attributes";
import { batch, mergeDesc, type BatchReplies, type RedisClient } from "@tracelane/runtime";
import { anomalyField, parseAnomalyMember, traceKeys, type PartitionKeys, type TraceKeys } from "./keys.js";
import { pruneTraces } from "./prune.js";
import { renderReplay } from "./replay.js";
import { aggregateCostStats } from "./stats.js";
import { buildTree, MAX_TRACE_DEPTH_DEFAULT, resolveStages, spanDepths } from "./tree.js";
import {
  ANOMALY_TYPES,
  type Anomaly,
  type AnomalyQuery,
  type AnomalyType,
  type CallStat,
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

/** A stored summary; one stored before priceVersions existed (nor a call's priceVersion) reads with none. */
function summaryOf(json: string): TraceSummary {
  const summary = JSON.parse(json) as TraceSummary;
  summary.priceVersions ??= [];
  return summary;
}

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

/** What a window scan read: how many traces it handed over, whether more matched, the oldest start it reached. */
export interface WindowScan {
  traces: number;
  truncated: boolean;
  /** startMs of the oldest trace handed over (undefined for none). */
  oldestStartMs?: number;
}

export interface TraceReader {
  readonly keys: TraceKeys;
  listTraces(filter?: TraceFilter, scope?: ReadScope): Promise<TraceListPage>;
  getTrace(traceId: string): Promise<TraceDetail | undefined>;
  renderReplay(trace: TraceDetail): string;
  listAnomalies(query?: AnomalyQuery, scope?: ReadScope): Promise<Anomaly[]>;
  costStats(query?: CostStatsQuery, scope?: ReadScope): Promise<CostStats>;
  /**
   * The summaries of the traces started in [since, until] (kind: all, or research traces only) the caller may
   * see, newest first, handed to `each` in batches of at most 500: at most `maxTraces` of them, `truncated`
   * when more matched. `each` may be async; the next batch is read after it returns.
   */
  scanWindow(
    query: Required<CostStatsQuery>,
    scope: ReadScope,
    opts: { maxTraces: number },
    each: (batch: TraceSummary[]) => void | Promise<void>,
  ): Promise<WindowScan>;
  /**
   * Every model call of these summaries with its cached input tokens, tagged with its trace. A summary stored
   * before calls carried them gets them from its stored spans (only for a stage that had any).
   */
  recordedCalls(summaries: readonly TraceSummary[]): Promise<Array<CallStat & { traceId: string; cachedInputTokens: number }>>;
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

/** A batch's replies, the first command error thrown. */
const valuesOf = (replies: BatchReplies): unknown[] =>
  replies.map(([err, value]) => {
    if (err) throw err;
    return value;
  });

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
    const replies = await batch(redis, (commands) => {
      for (const id of ids) commands.hkeys(keys.of(id).anomalies);
    });
    return valuesOf(replies).map((fields) => {
      const found = fields as string[];
      const types = new Set(found.map((f) => f.slice(0, f.indexOf("|")) as AnomalyType));
      return { count: found.length, types: [...types].sort((a, b) => typeOrder(a) - typeOrder(b)) };
    });
  };

  /** One index over every partition (`indexOf` names it in a partition), newest or highest first. */
  const scanIndex = (
    indexOf: (part: PartitionKeys) => string,
    range: { min: number; max: number },
    sizes: { first: number; most: number },
  ) => mergeDesc(redis, keys.partitions.map(indexOf), range, sizes);

  async function listTraces(filter: TraceFilter = {}, scope: ReadScope = {}): Promise<TraceListPage> {
    const limit = Math.min(Math.max(Math.trunc(filter.limit ?? 50), 1), 500);
    const sort = filter.sort ?? "start";
    const cursor = filter.cursor ? decodeCursor(filter.cursor, sort) : undefined;
    const researchOnly = filter.kind === "research";

    // Pick the most selective index whose order matches the requested sort (each partition has its own).
    let indexOf = (part: PartitionKeys) => part.idxStart;
    let min: number;
    let max = Infinity;
    if (sort === "cost") {
      indexOf = (part) => part.idxCost;
      min = filter.minCostUsd ?? -Infinity;
    } else if (sort === "duration") {
      indexOf = (part) => part.idxDuration;
      min = filter.minDurationMs ?? -Infinity;
    } else {
      const { anomaly, model, status } = filter;
      if (anomaly) indexOf = (part) => part.idxAnomaly(anomaly);
      else if (model) indexOf = (part) => part.idxModel(model);
      else if (researchOnly) indexOf = (part) => part.idxResearch;
      else if (status) indexOf = (part) => part.idxStatus(status);
      min = filter.since ?? -Infinity;
      max = filter.until ?? Infinity;
    }
    if (cursor) max = Math.min(max, cursor.k);
    const checkAnomalySet = filter.anomaly !== undefined && sort !== "start";

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

    // Up to `limit` entries per partition past the cursor first: the merged page never needs more from one.
    walk: for await (const entries of scanIndex(indexOf, { min, max }, { first: limit, most: chunk })) {
      const fresh = entries.filter((e) => !seen.has(e.id) && !(cursor && e.score === cursor.k && e.id >= cursor.i));
      if (fresh.length === 0) continue;
      const replies = valuesOf(
        await batch(redis, (commands) => {
          for (const e of fresh) {
            seen.add(e.id);
            const k = keys.of(e.id);
            commands.hget(k.summary, "json");
            if (checkAnomalySet) commands.zscore(k.idxAnomaly(filter.anomaly!), e.id);
          }
        }),
      );
      const stride = checkAnomalySet ? 2 : 1;
      // Per entry: undefined when its trace expired, null when it does not match the filter.
      const candidates = fresh.map((_, i): TraceSummary | null | undefined => {
        const json = replies[i * stride];
        if (typeof json !== "string") return undefined;
        const inAnomalySet = !checkAnomalySet || replies[i * stride + 1] !== null;
        const summary = summaryOf(json);
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
          // Resume after the last entry examined (a page may end exactly at the last match). The cursor is a
          // place in the merged order (score, id), not in a partition, so it reads the same from every partition.
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
    const k = keys.of(traceId);
    const replies = await batch(redis, (commands) => commands.hget(k.summary, "json").hgetall(k.spans).hvals(k.anomalies));
    const failed = replies.find(([err]) => err);
    if (failed) throw failed[0];
    const [json, spanMap, anomalyJson] = replies.map(([, v]) => v);
    if (typeof json !== "string") return undefined;
    const summary = summaryOf(json);
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
    const { type } = query;
    const logOf = (part: PartitionKeys) => (type ? part.anomalyLogByType(type) : part.anomalyLog);
    const range = { min: query.since ?? -Infinity, max: Infinity };
    const out: Anomaly[] = [];
    const gone = new Set<string>();
    for await (const entries of scanIndex(logOf, range, { first: limit, most: Math.max(limit, 100) })) {
      const members = entries.map((e) => parseAnomalyMember(e.id)).filter((m) => m !== undefined);
      const visible = await visibleOf(scope, [...new Set(members.map((m) => m.traceId))]);
      const parsed = members.filter((m) => visible.has(m.traceId));
      const replies = valuesOf(
        await batch(redis, (commands) => {
          for (const m of parsed) commands.hget(keys.of(m.traceId).anomalies, anomalyField(m.type, m.spanId));
        }),
      );
      for (let i = 0; i < parsed.length; i++) {
        const json = replies[i];
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

  async function scanWindow(
    query: Required<CostStatsQuery>,
    scope: ReadScope,
    opts: { maxTraces: number },
    each: (batch: TraceSummary[]) => void | Promise<void>,
  ): Promise<WindowScan> {
    const { since, until, kind } = query;
    const gone: string[] = [];
    let traces = 0;
    let truncated = false;
    let oldestStartMs: number | undefined;
    const indexOf = (part: PartitionKeys) => (kind === "research" ? part.idxResearch : part.idxStart);
    walk: for await (const entries of scanIndex(indexOf, { min: since, max: until }, { first: 500, most: 500 })) {
      const replies = valuesOf(
        await batch(redis, (commands) => {
          for (const e of entries) commands.hget(keys.of(e.id).summary, "json");
        }),
      );
      const visible = await visibleOf(
        scope,
        entries.map((e) => e.id),
      );
      const found: TraceSummary[] = [];
      for (let i = 0; i < entries.length; i++) {
        const json = replies[i];
        if (typeof json !== "string") gone.push(entries[i]!.id);
        else if (visible.has(entries[i]!.id)) {
          // One more than the most to read: the answer says there were more.
          if (traces === opts.maxTraces) {
            truncated = true;
            break;
          }
          const summary = summaryOf(json);
          found.push(summary);
          traces++;
          oldestStartMs = Math.min(oldestStartMs ?? Infinity, summary.startMs);
        }
      }
      if (found.length > 0) await each(found);
      if (truncated) break walk;
    }
    await prune(gone);
    return { traces, truncated, ...(oldestStartMs !== undefined ? { oldestStartMs } : {}) };
  }

  async function costStats(query: CostStatsQuery = {}, scope: ReadScope = {}): Promise<CostStats> {
    const until = query.until ?? Date.now();
    const since = query.since ?? until - DAY_MS;
    const kind = query.kind ?? "all";
    const summaries: TraceSummary[] = [];
    const { truncated } = await scanWindow({ since, until, kind }, scope, { maxTraces: maxStatsTraces }, (found) => {
      summaries.push(...found);
    });
    return aggregateCostStats(summaries, { since, until, kind, truncated });
  }

  async function recordedCalls(
    summaries: readonly TraceSummary[],
  ): Promise<Array<CallStat & { traceId: string; cachedInputTokens: number }>> {
    // Older summaries: a call without cachedInputTokens in a stage that had cached tokens is read from its span.
    const missing = summaries.flatMap((s) =>
      s.calls.filter((c) => c.cachedInputTokens === undefined && (s.byStage[c.stage]?.cachedInputTokens ?? 0) > 0).map((c) => ({ s, c })),
    );
    const cached = new Map<string, number>();
    if (missing.length > 0) {
      const replies = valuesOf(
        await batch(redis, (commands) => {
          for (const { s, c } of missing) commands.hget(keys.of(s.traceId).spans, c.spanId);
        }),
      );
      missing.forEach(({ s, c }, i) => {
        const json = replies[i];
        const span = typeof json === "string" ? (JSON.parse(json) as SpanRecord) : undefined;
        cached.set(`${s.traceId}/${c.spanId}`, span?.call?.cachedInputTokens ?? 0);
      });
    }
    return summaries.flatMap((s) =>
      s.calls.map((c) => ({
        ...c,
        traceId: s.traceId,
        cachedInputTokens: c.cachedInputTokens ?? cached.get(`${s.traceId}/${c.spanId}`) ?? 0,
      })),
    );
  }

  return { keys, listTraces, getTrace, renderReplay, listAnomalies, costStats, scanWindow, recordedCalls, anomalyCounts };
}
