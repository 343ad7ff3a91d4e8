import type { Redis } from "ioredis";
import { loadPriceTable, type PriceTable } from "@tracelane/pricing";
import {
  ANOMALY_STREAM_DEFAULT,
  anomalyField,
  anomalyMember,
  execWithScripts,
  resolveStages,
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
  redis: Redis;
  /** Key prefix (TRACELANE_TRACE_PREFIX). */
  prefix?: string;
  /** Default 86,400 (TRACELANE_TRACE_TTL_SECONDS). */
  ttlSeconds?: number;
  /** Default 5,000 (TRACELANE_MAX_SPANS_PER_TRACE). */
  maxSpansPerTrace?: number;
  /** Default: the built-in price table. */
  prices?: PriceTable;
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
  /** Traces per pipelined chunk of a batch (default 256). */
  chunkSize?: number;
  /** Traces whose spans are kept in memory between batches, so they are not read back (default 2,000; 0 turns it off). */
  recentTraces?: number;
}

export interface IngestResult {
  spans: number;
  stored: number;
  duplicates: number;
  dropped: number;
  traces: number;
  newAnomalies: Anomaly[];
}

export interface Assembler {
  readonly keys: TraceKeys;
  /** Store spans (any traces, any order, duplicates welcome) and re-assemble every trace they touch. */
  ingest(spans: readonly SpanRecord[]): Promise<IngestResult>;
}

type InsertReply = [number, number, string, number, ...string[]];

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
  const scripts = [insertSpansScript, writeTraceScript];
  const recent = new RecentTraces(opts.recentTraces ?? 2_000);

  /** Traces per pipelined chunk: chunks run concurrently, so JS work on one overlaps Redis work on others. */
  const chunkSize = opts.chunkSize ?? 256;

  // Scripts are loaded before the first batch, so concurrent chunks never meet NOSCRIPT halfway through
  // a pipeline (execWithScripts still reloads and re-runs after a Redis restart flushed them).
  let scriptsLoaded: Promise<unknown> | undefined;
  const loadScripts = () => {
    scriptsLoaded ??= Promise.all(scripts.map((s) => redis.script("LOAD", s.lua))).catch((err: unknown) => {
      scriptsLoaded = undefined;
      throw err;
    });
    return scriptsLoaded;
  };

  async function ingest(input: readonly SpanRecord[]): Promise<IngestResult> {
    const result: IngestResult = { spans: input.length, stored: 0, duplicates: 0, dropped: 0, traces: 0, newAnomalies: [] };
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
    const settled = await Promise.allSettled(chunks.map((ids) => ingestChunk(ids, byTrace, result)));
    stats.spansReceived += result.spans;
    stats.spansStored += result.stored;
    stats.duplicateSpans += result.duplicates;
    stats.droppedSpans += result.dropped;
    stats.newAnomalies += result.newAnomalies.length;
    const failed = settled.find((r): r is PromiseRejectedResult => r.status === "rejected");
    if (failed) throw failed.reason;
    return result;
  }

  async function ingestChunk(traceIds: string[], byTrace: Map<string, SpanRecord[]>, result: IngestResult): Promise<void> {
    const callModels = new Set<string>();
    for (const id of traceIds) for (const s of byTrace.get(id)!) if (s.call) callModels.add(s.call.model);
    const models = [...callModels];

    // Round trip 1: insert every trace's spans and read each trace back; load model baselines.
    const held = traceIds.map((id) => recent.get(id));
    const replies1 = await execWithScripts(redis, scripts, (p) => {
      traceIds.forEach((id, i) => {
        const args: (string | number)[] = [ttlSeconds, maxSpansPerTrace, held[i]?.version ?? -1];
        for (const s of byTrace.get(id)!) args.push(s.spanId, JSON.stringify(s));
        insertSpansScript.queue(p, [keys.spans(id), keys.dropped(id)], args);
      });
      baselines.queueLoad(p, models);
    });
    const baseline = baselines.parse(models, replies1.slice(traceIds.length));

    const detectedAt = new Date().toISOString();
    const detectedAtMs = Date.parse(detectedAt);
    const newLatencies = new Map<string, number[]>();
    const writes: { keys: string[]; args: (string | number)[]; anomalies: Anomaly[] }[] = [];

    traceIds.forEach((id, i) => {
      const [version, droppedCount, flags, upToDate, ...stored] = replies1[i] as InsertReply;
      const incoming = byTrace.get(id)!;
      const fresh: SpanRecord[] = [];
      incoming.forEach((s, k) => {
        const f = flags[k];
        if (f === "1") fresh.push(s);
        else if (f === "d") result.dropped++;
        else result.duplicates++; // "0" already stored, "D" dropped before
      });
      result.stored += fresh.length;
      const before = upToDate === 1 ? held[i]!.spans : stored.map((j) => JSON.parse(j) as SpanRecord);
      const spans = before.length === 0 ? fresh : fresh.concat(before);
      if (spans.length === 0) return; // only over-cap spans of a trace whose stored spans expired: nothing to summarise
      recent.set(id, Number(version), spans);

      const stages = resolveStages(spans);
      if (fresh.length > 0) opts.onStored?.(fresh, stages, detectedAtMs);
      const summary = summarizeTrace(id, spans, Number(droppedCount), stages);
      // A call is judged against its model's baseline once, when it first arrives, and then joins it.
      const freshIds = new Set(fresh.map((s) => s.spanId));
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
      const tagIndexes = [...summary.models.map((m) => keys.idxModel(m)), ...(summary.researchId !== undefined ? [keys.idxResearch] : [])];
      const writeKeys = [
        keys.summary(id),
        keys.anomalies(id),
        keys.spans(id),
        keys.dropped(id),
        keys.idxExpiry,
        keys.members(id),
        keys.idxStart,
        keys.idxCost,
        keys.idxDuration,
        keys.idxStatus("ok"),
        keys.idxStatus("error"),
        keys.anomalyLog,
        anomalyStream,
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
        streamMaxLen,
      ];
      for (const a of anomalies) {
        writeKeys.push(keys.idxAnomaly(a.type), keys.anomalyLogByType(a.type));
        args.push(anomalyField(a.type, a.spanId), JSON.stringify(a), anomalyMember(id, a.spanId, a.type), a.type, detectedAtMs);
      }
      writes.push({ keys: writeKeys, args, anomalies });
    });

    // Round trip 2: summaries, indexes, anomalies (first detection wins), baselines.
    const replies2 = await execWithScripts(redis, scripts, (p) => {
      for (const w of writes) writeTraceScript.queue(p, w.keys, w.args);
      baselines.queueRecord(p, newLatencies);
    });
    const newAnomalies: Anomaly[] = [];
    writes.forEach((w, i) => {
      const [written, ...fresh] = replies2[i] as number[];
      if (written === 1) stats.traceWrites++;
      else stats.staleSummaryWrites++;
      for (const j of fresh) newAnomalies.push(w.anomalies[j]!);
    });
    // Alert as soon as they are stored: a redelivery would find them already recorded (not new).
    if (newAnomalies.length > 0) {
      result.newAnomalies.push(...newAnomalies);
      opts.onNewAnomalies?.(newAnomalies);
    }
  }

  return { keys, ingest };
}
