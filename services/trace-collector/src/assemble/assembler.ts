import { batch, type RedisClient } from "@tracelane/runtime";
import type { Caller } from "@tracelane/api-keys";
import { ATTR_OWNER } from "@tracelane/pipeline";
import { loadPriceTable, type PriceSource } from "@tracelane/pricing";
import {
  ANOMALY_STREAM_DEFAULT,
  FORECAST_SCRIPTS,
  FORECAST_WINDOW_DEFAULT,
  forecastSamplesOf,
  parseTakenSamples,
  queueHoldForecast,
  queueRecordSamples,
  queueSettledForecasts,
  queueTakeForecast,
  anomalyField,
  anomalyMember,
  batchWithScripts,
  loadScripts as loadScriptsOn,
  resolveStages,
  spanDepths,
  traceKeys,
  type Anomaly,
  type SpanRecord,
  type TraceKeys,
} from "@tracelane/trace-store";
import { BaselineStore, type Baseline } from "../anomalies/baseline.js";
import { evaluateTrace } from "../anomalies/evaluate.js";
import { DEFAULT_RULES, type AnomalyRules } from "../anomalies/registry.js";
import { modelCallOf } from "../pricing.js";
import { CollectorStats } from "../stats.js";
import { RecentTraces } from "./recent-traces.js";
import { insertSpansScript, writeTraceScript } from "./scripts.js";
import { summarizeTrace } from "./summary.js";

export interface AssemblerOptions {
  redis: RedisClient;
  /** Key prefix (TRACELANE_TRACE_PREFIX). */
  prefix?: string;
  /** Default 86,400 (TRACELANE_TRACE_TTL_SECONDS). */
  ttlSeconds?: number;
  /** Default 5,000 (TRACELANE_MAX_SPANS_PER_TRACE). */
  maxSpansPerTrace?: number;
  /** Default: the built-in price table. */
  prices?: PriceSource;
  /** Default: DEFAULT_RULES. */
  rules?: AnomalyRules;
  anomalyStream?: string;
  anomalyStreamMaxLen?: number;
  /** Called with anomalies seen for the first time, right after they are stored (once per chunk of a batch); must not block. */
  onNewAnomalies?: (anomalies: Anomaly[]) => void;
  /**
   * Called once per trace of a batch with the spans it stored for the first time (never with a
   * duplicate) and the stage of every span of the trace; must not block (metrics).
   */
  onStored?: (fresh: readonly SpanRecord[], stages: ReadonlyMap<string, string | undefined>, nowMs: number) => void;
  stats?: CollectorStats;
  /** Traces per chunk of a batch, sent as one `batch` per round trip (default 256). */
  chunkSize?: number;
  /** Traces whose spans are kept in memory between batches, so they are not read back (default 2,000; 0 turns it off). */
  recentTraces?: number;
  /**
   * A trace of up to this many spans is re-assembled (summary, anomalies, indexes) by every batch that
   * touches it (default 1,000, COLLECTOR_IMMEDIATE_ASSEMBLY_SPANS). Above it, a batch that adds less than a
   * quarter of the trace only stores its spans; the trace is re-assembled on a timer, at most once per
   * `assemblyIntervalMs` per `immediateAssemblySpans` spans, so one span costs O(1) amortised, not O(trace).
   */
  immediateAssemblySpans?: number;
  /** Default 1,000 ms (COLLECTOR_ASSEMBLY_INTERVAL_MS). */
  assemblyIntervalMs?: number;
  /** Spans deeper than this in their trace are cut from its tree and counted (default 1,000, TRACELANE_MAX_TRACE_DEPTH). */
  maxTraceDepth?: number;
  /** Completed researches kept per (stage, model) for the submit-time forecast (default 200, TRACELANE_FORECAST_WINDOW). */
  forecastWindow?: number;
  /**
   * A completed research's per-stage totals are recorded this long after its completion was first seen, so spans
   * other processes exported later are counted (default 5,000 ms, COLLECTOR_FORECAST_SETTLE_MS); checked every
   * assembly tick.
   */
  forecastSettleMs?: number;
  logger?: { warn(obj: object, msg?: string): void };
}

/** Where spans come from: our own services (the span stream: trusted) or OTLP/HTTP, with the caller's key. */
export interface IngestOrigin {
  source: "internal" | "otlp";
  caller?: Caller;
}

const INTERNAL: IngestOrigin = { source: "internal" };

export interface IngestResult {
  spans: number;
  stored: number;
  duplicates: number;
  dropped: number;
  /** OTLP spans refused: their trace belongs to another key (see insertSpansScript). */
  refused: number;
  /** Traces only stored by this call; their re-assembly is deferred to the next assembly tick. */
  deferred: number;
  traces: number;
  newAnomalies: Anomaly[];
}

export interface Assembler {
  readonly keys: TraceKeys;
  /**
   * Store spans (any traces, any order, duplicates welcome) and re-assemble every trace they touch
   * (a large trace that got few spans: on the next assembly tick). Default origin: internal.
   */
  ingest(spans: readonly SpanRecord[], origin?: IngestOrigin): Promise<IngestResult>;
  /** Stop the assembly timer and flush (shutdown). */
  close(): Promise<void>;
}

type InsertReply = [number, number, string, 0 | 1 | 2 | 3, ...string[]];

/** A trace stored but not re-assembled yet: the spans stored since its last assembly, and when it is due. */
interface Deferred {
  fresh: SpanRecord[];
  dueAt: number;
}

export function createAssembler(opts: AssemblerOptions): Assembler {
  const { redis } = opts;
  const prices = opts.prices ?? loadPriceTable();
  const rules = opts.rules ?? DEFAULT_RULES;
  const ttlSeconds = opts.ttlSeconds ?? 86_400;
  const maxSpansPerTrace = opts.maxSpansPerTrace ?? 5_000;
  const keys = traceKeys(opts.prefix);
  const stats = opts.stats ?? new CollectorStats();
  const anomalyStream = opts.anomalyStream ?? ANOMALY_STREAM_DEFAULT;
  const streamMaxLen = opts.anomalyStreamMaxLen ?? 10_000;
  const baselines = new BaselineStore(keys, rules.settings.latency_vs_baseline.window ?? 200);
  const scripts = [insertSpansScript, writeTraceScript, ...FORECAST_SCRIPTS];
  const forecastWindow = opts.forecastWindow ?? FORECAST_WINDOW_DEFAULT;
  const forecastSettleMs = opts.forecastSettleMs ?? 5_000;
  const recent = new RecentTraces(opts.recentTraces ?? 2_000);
  const immediateSpans = opts.immediateAssemblySpans ?? 1_000;
  const intervalMs = opts.assemblyIntervalMs ?? 1_000;
  const maxDepth = opts.maxTraceDepth ?? 1_000;
  const deferred = new Map<string, Deferred>();
  let timer: NodeJS.Timeout | undefined;
  let ticking: Promise<void> | undefined;

  /** Traces per chunk: chunks run concurrently, so JS work on one overlaps Redis work on others. */
  const chunkSize = opts.chunkSize ?? 256;

  // Scripts are loaded (on every master of a Cluster) before the first batch, so concurrent chunks never meet
  // NOSCRIPT halfway through a batch (batchWithScripts still reloads and re-runs after a Redis restart flushed them).
  let scriptsLoaded: Promise<unknown> | undefined;
  const loadScripts = () => {
    scriptsLoaded ??= loadScriptsOn(redis, scripts).catch((err: unknown) => {
      scriptsLoaded = undefined;
      throw err;
    });
    return scriptsLoaded;
  };

  const newResult = (spans: number): IngestResult => ({
    spans,
    stored: 0,
    duplicates: 0,
    dropped: 0,
    refused: 0,
    deferred: 0,
    traces: 0,
    newAnomalies: [],
  });

  /**
   * Re-assemble deferred traces (all of them with `all`, else those due), in chunks; and traces another
   * replica deferred and left overdue (it died before its tick): the deferred index of every partition is shared.
   */
  async function assembleDeferred(all: boolean): Promise<void> {
    const now = Date.now();
    const due = [...deferred].filter(([, d]) => all || d.dueAt <= now).map(([id]) => id);
    if (!all) {
      const replies = await batch(redis, (commands) => {
        for (const part of keys.partitions) commands.zrangebyscore(part.idxDeferred, "-inf", now - 5 * intervalMs, "LIMIT", 0, chunkSize);
      });
      for (const [err, orphans] of replies) {
        if (err) throw err;
        for (const id of orphans as string[]) if (!deferred.has(id)) due.push(id);
      }
    }
    if (due.length === 0) return;
    await loadScripts();
    const byTrace = new Map(due.map((id) => [id, [] as SpanRecord[]]));
    const result = newResult(0);
    for (let i = 0; i < due.length; i += chunkSize) await ingestChunk(due.slice(i, i + chunkSize), byTrace, result, undefined);
    stats.newAnomalies += result.newAnomalies.length;
  }

  /**
   * Record the forecast samples of researches that completed at least forecastSettleMs ago: each trace's are taken
   * once (by whichever replica's take removes it from the pending index), then pushed onto their (stage, model) lists.
   */
  async function settleForecasts(): Promise<void> {
    const replies = await batch(redis, (commands) => queueSettledForecasts(commands, keys, Date.now(), chunkSize));
    const due: string[] = [];
    for (const [err, ids] of replies) {
      if (err) throw err;
      due.push(...(ids as string[]));
    }
    if (due.length === 0) return;
    await loadScripts();
    const taken = await batchWithScripts(redis, scripts, (commands) => {
      for (const id of due) queueTakeForecast(commands, keys, id);
    });
    const samples = taken.flatMap(parseTakenSamples);
    stats.forecastResearches += taken.filter((t) => typeof t === "string").length;
    if (samples.length === 0) return;
    const written = await batch(redis, (commands) => queueRecordSamples(commands, keys, samples, forecastWindow));
    const failed = written.find(([err]) => err);
    if (failed) throw failed[0];
  }

  const tick = () => {
    ticking ??= assembleDeferred(false)
      .catch((err: unknown) => opts.logger?.warn({ err }, "deferred trace assembly failed; retried on the next tick"))
      .then(() => settleForecasts())
      .catch((err: unknown) => opts.logger?.warn({ err }, "recording forecast samples failed; retried on the next tick"))
      .finally(() => {
        ticking = undefined;
      });
  };
  /** The assembly timer runs from the first ingest until close(): it also picks up other replicas' overdue traces. */
  let closed = false;
  const startTimer = () => {
    if (timer || closed) return;
    timer = setInterval(tick, intervalMs);
    timer.unref();
  };
  const defer = (id: string, fresh: SpanRecord[], spanCount: number) => {
    const d = deferred.get(id);
    if (d) d.fresh.push(...fresh);
    else deferred.set(id, { fresh, dueAt: Date.now() + intervalMs * Math.ceil(spanCount / immediateSpans) });
  };

  async function ingest(input: readonly SpanRecord[], origin: IngestOrigin = INTERNAL): Promise<IngestResult> {
    const result = newResult(input.length);
    startTimer();
    if (input.length === 0) return result;
    await loadScripts();

    const byTrace = new Map<string, SpanRecord[]>();
    for (const span of input) {
      const call = modelCallOf(span, prices);
      const priced = call ? { ...span, call } : span;
      const list = byTrace.get(span.traceId);
      if (list) list.push(priced);
      else byTrace.set(span.traceId, [priced]);
    }
    const traceIds = [...byTrace.keys()];
    result.traces = traceIds.length;
    const chunks: string[][] = [];
    for (let i = 0; i < traceIds.length; i += chunkSize) chunks.push(traceIds.slice(i, i + chunkSize));
    // Every chunk runs to its end even if another fails: what a chunk stored (and alerted) stays done,
    // and the caller retries the whole batch, which is idempotent.
    const settled = await Promise.allSettled(chunks.map((ids) => ingestChunk(ids, byTrace, result, origin)));
    stats.spansReceived += result.spans;
    stats.spansStored += result.stored;
    stats.duplicateSpans += result.duplicates;
    stats.droppedSpans += result.dropped;
    stats.foreignSpansRefused += result.refused;
    stats.deferredAssemblies += result.deferred;
    stats.newAnomalies += result.newAnomalies.length;
    const failed = settled.find((r): r is PromiseRejectedResult => r.status === "rejected");
    if (failed) throw failed.reason;
    return result;
  }

  /**
   * Insert and assemble the traces of one chunk. `origin` undefined: a deferred re-assembly (no new
   * spans; every trace is assembled now).
   */
  async function ingestChunk(
    traceIds: string[],
    byTrace: Map<string, SpanRecord[]>,
    result: IngestResult,
    origin: IngestOrigin | undefined,
  ): Promise<void> {
    const callModels = new Set<string>();
    for (const id of traceIds) {
      for (const s of byTrace.get(id)!) if (s.call) callModels.add(s.call.model);
      for (const s of deferred.get(id)?.fresh ?? []) if (s.call) callModels.add(s.call.model);
    }
    const models = [...callModels];
    const source = origin === undefined ? "t" : origin.source === "internal" ? "i" : "o";
    const callerId = origin?.caller?.id ?? "";
    const admin = origin?.caller?.role === "admin" ? 1 : 0;

    // Round trip 1: insert every trace's spans and read back the traces to assemble now; load model baselines.
    const held = traceIds.map((id) => recent.get(id));
    const taken = traceIds.map((id) => deferred.get(id)?.fresh.length ?? 0);
    const replies1 = await batchWithScripts(redis, scripts, (commands) => {
      traceIds.forEach((id, i) => {
        const incoming = byTrace.get(id)!;
        const named = source === "i" ? ownerNamedBy(incoming) : "";
        const args: (string | number)[] = [
          ttlSeconds,
          maxSpansPerTrace,
          held[i]?.version ?? -1,
          source === "t" ? maxSpansPerTrace : immediateSpans,
          source,
          callerId,
          admin,
          named,
          intervalMs,
          id,
        ];
        for (const s of incoming) args.push(s.spanId, JSON.stringify(s));
        const k = keys.of(id);
        insertSpansScript.queue(commands, [k.spans, k.dropped, k.summary, k.idxDeferred], args);
      });
      baselines.queueLoad(commands, models);
    });
    const baseline = baselines.parse(models, replies1.slice(traceIds.length));

    const detectedAt = new Date().toISOString();
    const detectedAtMs = Date.parse(detectedAt);
    const newLatencies = new Map<string, number[]>();
    const writes: { keys: string[]; args: (string | number)[]; anomalies: Anomaly[] }[] = [];
    /** Completed research traces of this chunk: their forecast samples, held until they settle. */
    const forecasts: { id: string; samples: NonNullable<ReturnType<typeof forecastSamplesOf>> }[] = [];
    /** Deferred traces assembled by this chunk: their pending spans are consumed once the writes succeed. */
    const consumed: { id: string; count: number }[] = [];
    /** Traces assembled now (or found expired): they leave the shared deferred index. */
    const settled: string[] = [];

    traceIds.forEach((id, i) => {
      const [version, droppedCount, flags, mode, ...stored] = replies1[i] as InsertReply;
      const incoming = byTrace.get(id)!;
      const fresh: SpanRecord[] = [];
      let added = 0;
      incoming.forEach((s, k) => {
        const f = flags[k];
        if (f === "1") fresh.push(s);
        else if (f === "d") result.dropped++;
        else if (f === "r") result.refused++;
        else result.duplicates++; // "0" already stored, "D" dropped before
        if (f === "1" || f === "d") added++;
      });
      result.stored += fresh.length;
      for (const s of fresh) if (s.clamped) stats.spansClamped++;
      if (Number(mode) === 3) return; // refused, or duplicates of a deferred trace: nothing changed to assemble
      if (Number(mode) === 2) {
        // Keep the held copy current (O(new spans)), so the deferred assembly reads nothing back.
        const h = held[i];
        if (h && h.version === Number(version) - added) {
          h.spans.push(...fresh);
          recent.set(id, Number(version), h.spans);
        }
        result.deferred++;
        defer(id, fresh, Number(version) - Number(droppedCount));
        return;
      }
      // Spans stored earlier without an assembly are judged (metrics, baselines) now, once.
      const pending = deferred.get(id)?.fresh.slice(0, taken[i]) ?? [];
      if (pending.length > 0 || origin === undefined) consumed.push({ id, count: pending.length });
      const before = Number(mode) === 0 ? held[i]!.spans : stored.map((j) => JSON.parse(j) as SpanRecord);
      const spans = before.length === 0 ? fresh : fresh.concat(before);
      // Only over-cap spans of a trace whose stored spans expired (or a deferred trace that expired): nothing to summarise.
      settled.push(id);
      if (spans.length === 0) return;
      recent.set(id, Number(version), spans);
      const judged = pending.length === 0 ? fresh : pending.concat(fresh);

      const stages = resolveStages(spans);
      if (judged.length > 0) opts.onStored?.(judged, stages, detectedAtMs);
      const summary = summarizeTrace(id, spans, Number(droppedCount), stages, { depths: spanDepths(spans), maxDepth });
      if (summary.researchId !== undefined) {
        const samples = forecastSamplesOf(spans, stages);
        if (samples) forecasts.push({ id, samples });
      }
      // A call is judged against its model's baseline once, when it first arrives, and then joins it.
      const freshIds = new Set(judged.map((s) => s.spanId));
      const isFreshAnswer = (c: { span: SpanRecord; failed: boolean }) => freshIds.has(c.span.spanId) && !c.failed;
      const { anomalies, calls } = evaluateTrace(spans, summary, stages, rules, detectedAt, (c) =>
        isFreshAnswer(c) ? (baseline.get(c.span.call.model) ?? ({ p95: null, samples: 0 } satisfies Baseline)) : undefined,
      );
      for (const c of calls) {
        if (!isFreshAnswer(c)) continue;
        const list = newLatencies.get(c.span.call.model);
        if (list) list.push(c.latencyMs);
        else newLatencies.set(c.span.call.model, [c.latencyMs]);
      }

      // The start-scored "tag" indexes the trace belongs to: one per model, and research traces.
      const k = keys.of(id);
      const tagIndexes = [...summary.models.map((m) => k.idxModel(m)), ...(summary.researchId !== undefined ? [k.idxResearch] : [])];
      const writeKeys = [
        k.summary,
        k.anomalies,
        k.spans,
        k.dropped,
        k.idxExpiry,
        k.members,
        k.idxStart,
        k.idxCost,
        k.idxDuration,
        k.idxStatus("ok"),
        k.idxStatus("error"),
        k.anomalyLog,
        ...tagIndexes,
      ];
      const args: (string | number)[] = [
        id,
        Number(version),
        JSON.stringify(summary),
        ttlSeconds,
        summary.startMs,
        summary.costUsd,
        summary.durationMs,
        summary.status,
        tagIndexes.length,
        anomalies.length,
        summary.tooDeepSpans ?? 0,
      ];
      for (const a of anomalies) {
        writeKeys.push(k.idxAnomaly(a.type), k.anomalyLogByType(a.type));
        args.push(anomalyField(a.type, a.spanId), JSON.stringify(a), anomalyMember(id, a.spanId, a.type), detectedAtMs);
      }
      writes.push({ keys: writeKeys, args, anomalies });
    });

    // Round trip 2: summaries, indexes, anomalies (first detection wins), baselines.
    const replies2 = await batchWithScripts(redis, scripts, (commands) => {
      for (const w of writes) writeTraceScript.queue(commands, w.keys, w.args);
      baselines.queueRecord(commands, newLatencies);
      const settleAt = Date.now() + forecastSettleMs;
      for (const f of forecasts) queueHoldForecast(commands, keys, f.id, f.samples, settleAt);
      // One ZREM per partition: a multi-member command names one key, the partition's deferred index.
      for (const [deferredIndex, ids] of groupBy(settled, (id) => keys.of(id).idxDeferred)) commands.zrem(deferredIndex, ...ids);
    });
    for (const { id, count } of consumed) {
      const d = deferred.get(id);
      if (!d) continue;
      d.fresh.splice(0, count);
      if (d.fresh.length === 0) deferred.delete(id);
    }
    if (origin === undefined) stats.tickAssemblies += writes.length;
    const newAnomalies: Anomaly[] = [];
    writes.forEach((w, i) => {
      const [written, deeper, ...fresh] = replies2[i] as number[];
      if (written === 1) stats.traceWrites++;
      else stats.staleSummaryWrites++;
      stats.spansTooDeep += deeper!;
      for (const j of fresh) newAnomalies.push(w.anomalies[j]!);
    });
    // Alert as soon as they are stored: a redelivery would find them already recorded (not new).
    if (newAnomalies.length > 0) {
      result.newAnomalies.push(...newAnomalies);
      opts.onNewAnomalies?.(newAnomalies);
      await streamAnomalies(newAnomalies);
    }
  }

  /**
   * XADD new anomalies to the anomaly stream, one key read by outside consumers, so not written inside writeTrace
   * (whose keys are all of one partition). Sent right after the writes that found them new, it misses them in one
   * case: the process dies (or loses Redis) between the two; the anomalies are stored, and a redelivery of the spans
   * finds them already recorded, not new.
   */
  async function streamAnomalies(anomalies: readonly Anomaly[]): Promise<void> {
    const replies = await batch(redis, (commands) => {
      for (const a of anomalies) {
        commands.xadd(anomalyStream, "MAXLEN", "~", streamMaxLen, "*", "type", a.type, "traceId", a.traceId, "anomaly", JSON.stringify(a));
      }
    });
    const failed = replies.find(([err]) => err);
    if (failed) throw failed[0];
  }

  return {
    keys,
    ingest,
    async close() {
      closed = true;
      if (timer) clearInterval(timer);
      timer = undefined;
      await ticking;
      await assembleDeferred(true);
    },
  };
}

/** `items` grouped by `keyOf`, in first-seen order. */
function groupBy<T>(items: readonly T[], keyOf: (item: T) => string): Map<string, T[]> {
  const groups = new Map<string, T[]>();
  for (const item of items) {
    const group = groups.get(keyOf(item));
    if (group) group.push(item);
    else groups.set(keyOf(item), [item]);
  }
  return groups;
}

/** The owner key id an internal span names (the api sets tracelane.owner on its request span). */
function ownerNamedBy(spans: readonly SpanRecord[]): string {
  for (const s of spans) {
    const v = s.attributes[ATTR_OWNER];
    if (typeof v === "string" && v !== "") return v;
  }
  return "";
}
