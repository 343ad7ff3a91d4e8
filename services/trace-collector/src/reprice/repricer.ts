import { ATTR_CLAIM_INDEX } from "@tracelane/pipeline";
import { addUsd, PriceTable, type PriceSource } from "@tracelane/pricing";
import type { RepriceProgress } from "@tracelane/queue-contract";
import type { RepricedCost, RepricedCosts } from "@tracelane/research-store";
import { batch, type RedisClient } from "@tracelane/runtime";
import {
  batchWithScripts,
  loadScripts,
  resolveStages,
  spanDepths,
  type SpanRecord,
  type TraceKeys,
  type TraceSummary,
} from "@tracelane/trace-store";
import { repriceTraceScript } from "../assemble/scripts.js";
import { summarizeTrace } from "../assemble/summary.js";
import { modelCallOf } from "../pricing.js";

export interface RepricerOptions {
  redis: RedisClient;
  keys: TraceKeys;
  /** The collector's own table: what a reprice without `priceTable` uses. */
  prices: PriceSource;
  /** Where a research's re-priced costs go (research-store's ResearchStore). */
  research: { applyRepricedCosts(id: string, costs: RepricedCosts): Promise<"applied" | "unchanged" | "running" | "missing"> };
  /** TRACELANE_MAX_TRACE_DEPTH, as the assembler has it (the summary counts spans below it). */
  maxTraceDepth?: number;
  /** Traces read, re-priced and written per step (REPRICE_BATCH_TRACES, default 200). */
  batchSize?: number;
}

export interface RepriceWindow {
  since: number;
  until: number;
  /** Default: the collector's table. */
  prices?: PriceSource;
}

export class RepriceStoppedError extends Error {
  override name = "RepriceStoppedError";
  constructor() {
    super("the trace-collector is stopping: the reprice resumes from its last step on its next attempt");
  }
}

/** Tries per trace when spans keep arriving between its read and its write. */
const MAX_TRIES = 5;

/** The costs of `calls` as a research shows them: null as soon as one is unpriced; failed attempts apart. */
function costOf(calls: readonly { costUsd: number | null; failed: boolean }[]): RepricedCost {
  let costUsd: number | null = 0;
  let retryCostUsd = 0;
  for (const c of calls) {
    if (c.costUsd === null) costUsd = null;
    else {
      if (costUsd !== null) costUsd = addUsd(costUsd, c.costUsd);
      if (c.failed) retryCostUsd = addUsd(retryCostUsd, c.costUsd);
    }
  }
  return { costUsd, retryCostUsd };
}

/** A research's costs from its re-priced trace: per stage (from the summary's calls) and per claim (by the claim span above each call). */
export function researchCostsOf(summary: TraceSummary, spans: readonly SpanRecord[], priceVersion: string): RepricedCosts {
  const byStage = new Map<string, { costUsd: number | null; failed: boolean }[]>();
  const byClaim = new Map<number, { costUsd: number | null; failed: boolean }[]>();
  const byId = new Map(spans.map((s) => [s.spanId, s]));
  const claimOf = (span: SpanRecord | undefined): number | undefined => {
    for (let hops = 0; span && hops < 256; hops++) {
      const index = span.attributes[ATTR_CLAIM_INDEX];
      if (typeof index === "number") return index;
      span = span.parentSpanId ? byId.get(span.parentSpanId) : undefined;
    }
    return undefined;
  };
  for (const c of summary.calls) {
    const call = { costUsd: c.costUsd, failed: c.failedAttempt ?? c.error };
    (byStage.get(c.stage) ?? byStage.set(c.stage, []).get(c.stage)!).push(call);
    const claim = claimOf(byId.get(c.spanId));
    if (claim !== undefined) (byClaim.get(claim) ?? byClaim.set(claim, []).get(claim)!).push(call);
  }
  return {
    priceVersion,
    stages: Object.fromEntries([...byStage].map(([stage, calls]) => [stage, costOf(calls)])),
    ...(byClaim.size > 0
      ? { claims: Object.fromEntries([...byClaim].sort(([a], [b]) => a - b).map(([claim, calls]) => [String(claim), costOf(calls)])) }
      : {}),
  };
}

type Progress = Omit<RepriceProgress, "priceVersion" | "cursor">;

/**
 * Re-price the stored traces whose start is in [since, until]: every call's cost from its recorded tokens with the
 * table, the summary re-derived from every stored span (as the assembler does), written with the index scores in one
 * script per trace (repriceTraceScript: refused when a span arrived since the read, then read again), and the
 * trace's research's costs (finished researches). In steps of `batchSize` traces, reporting after each.
 */
export function createRepricer(o: RepricerOptions) {
  const batchSize = o.batchSize ?? 200;
  const maxDepth = o.maxTraceDepth ?? 1_000;
  const scripts = [repriceTraceScript];

  async function step(ids: readonly string[], prices: PriceSource, priceVersion: string, p: Progress): Promise<void> {
    let pending = [...ids];
    for (let attempt = 1; pending.length > 0; attempt++) {
      const reads = await batch(o.redis, (c) => {
        for (const id of pending) {
          const k = o.keys.of(id);
          c.hgetall(k.spans).scard(k.dropped).hget(k.summary, "json");
        }
      });
      const writes: { id: string; keys: string[]; args: (string | number)[] }[] = [];
      const done: { id: string; before: TraceSummary; after: TraceSummary; spans: SpanRecord[]; calls: Progress }[] = [];
      pending.forEach((id, i) => {
        const [[e1, hash], [e2, dropped], [e3, json]] = reads.slice(i * 3, i * 3 + 3) as [
          [unknown, unknown],
          [unknown, unknown],
          [unknown, unknown],
        ];
        const err = e1 ?? e2 ?? e3;
        if (err) throw err;
        const fields = Object.entries(hash as Record<string, string>);
        if (typeof json !== "string" || fields.length === 0) {
          p.tracesSkipped++;
          return;
        }
        const changed: (string | number)[] = [];
        const calls = { callsRepriced: 0, nowPriced: 0, nowUnpriced: 0 } as Progress;
        const spans = fields.map(([spanId, text]) => {
          const stored = JSON.parse(text) as SpanRecord;
          // As at ingest: the price in force at the call's start (a dated table), with the table's version.
          const call = modelCallOf(stored, prices);
          if (JSON.stringify(call) === JSON.stringify(stored.call)) return stored;
          const before = stored.call?.costUsd ?? null;
          const after = call?.costUsd ?? null;
          if (before !== after) calls.callsRepriced++;
          if (before === null && after !== null) calls.nowPriced++;
          if (before !== null && after === null) calls.nowUnpriced++;
          const { call: _old, ...rest } = stored;
          const span: SpanRecord = call ? { ...rest, call } : rest;
          changed.push(spanId, JSON.stringify(span));
          return span;
        });
        const summary = summarizeTrace(id, spans, Number(dropped), resolveStages(spans), { depths: spanDepths(spans), maxDepth });
        const after = JSON.stringify(summary);
        done.push({ id, before: JSON.parse(json) as TraceSummary, after: summary, spans, calls });
        if (after === json && changed.length === 0) return;
        const k = o.keys.of(id);
        writes.push({
          id,
          keys: [k.spans, k.dropped, k.summary, k.idxStart, k.idxCost, k.idxDuration, k.idxStatus("ok"), k.idxStatus("error")],
          args: [
            fields.length + Number(dropped),
            after,
            summary.startMs,
            summary.costUsd,
            summary.durationMs,
            summary.status,
            id,
            ...changed,
          ],
        });
      });
      const replies =
        writes.length === 0
          ? []
          : await batchWithScripts(o.redis, scripts, (c) => {
              for (const w of writes) repriceTraceScript.queue(c, w.keys, w.args);
            });
      const outcome = new Map(writes.map((w, i) => [w.id, Number(replies[i])]));
      const retry: string[] = [];
      for (const d of done) {
        const r = outcome.get(d.id) ?? 0;
        if (r === -1 && attempt < MAX_TRIES) {
          retry.push(d.id);
          continue;
        }
        if (r < 0) {
          p.tracesSkipped++;
          continue;
        }
        p.tracesDone++;
        if (r === 1) p.tracesChanged++;
        p.callsRepriced += d.calls.callsRepriced;
        p.nowPriced += d.calls.nowPriced;
        p.nowUnpriced += d.calls.nowUnpriced;
        p.costBeforeUsd = addUsd(p.costBeforeUsd, d.before.costUsd);
        p.costAfterUsd = addUsd(p.costAfterUsd, d.after.costUsd);
        if (d.after.researchId !== undefined) {
          const applied = await o.research.applyRepricedCosts(d.after.researchId, researchCostsOf(d.after, d.spans, priceVersion));
          if (applied === "applied") p.researchesRepriced++;
        }
      }
      pending = retry;
    }
  }

  return {
    /**
     * Re-price the window; `report` is awaited after every step with the figures so far and where the next step
     * starts. When `stopping()` turns true (shutdown) it throws between two steps. `resume`, the last report of an
     * earlier attempt with the same table, continues from its cursor with its figures.
     */
    async run(
      window: RepriceWindow,
      report: (progress: RepriceProgress) => Promise<void>,
      stopping: () => boolean = () => false,
      resume?: RepriceProgress,
    ): Promise<RepriceProgress> {
      // One table for the whole run: a snapshot of the collector's (a PriceBook may reload meanwhile).
      const prices = window.prices ?? new PriceTable(o.prices.entries);
      const priceVersion = prices.version;
      const { since, until } = window;
      await loadScripts(o.redis, scripts);
      // Another table since (the collector's reloaded): the figures so far priced with the old one, so start over.
      const from = resume?.cursor && resume.priceVersion === priceVersion ? resume : undefined;
      let p: Progress;
      if (from) {
        const { priceVersion: _version, cursor: _cursor, ...figures } = from;
        p = figures;
      } else {
        const counts = await batch(o.redis, (c) => {
          for (const part of o.keys.partitions) c.zcount(part.idxStart, since, until);
        });
        p = {
          tracesDone: 0,
          tracesTotal: counts.reduce((n, [err, count]) => {
            if (err) throw err;
            return n + Number(count);
          }, 0),
          tracesChanged: 0,
          tracesSkipped: 0,
          callsRepriced: 0,
          nowPriced: 0,
          nowUnpriced: 0,
          researchesRepriced: 0,
          costBeforeUsd: 0,
          costAfterUsd: 0,
        };
      }
      let cursor = from?.cursor ?? { partition: 0, offset: 0 };
      const snapshot = (): RepriceProgress => ({ ...p, priceVersion, cursor });
      await report(snapshot());
      const parts = o.keys.partitions;
      while (cursor.partition < parts.length) {
        if (stopping()) throw new RepriceStoppedError();
        // Pages by offset: a trace's start score only ever moves earlier, and new traces start now, past the window.
        const ids = await o.redis.zrangebyscore(parts[cursor.partition]!.idxStart, since, until, "LIMIT", cursor.offset, batchSize);
        if (ids.length > 0) await step(ids, prices, priceVersion, p);
        cursor =
          ids.length < batchSize
            ? { partition: cursor.partition + 1, offset: 0 }
            : { partition: cursor.partition, offset: cursor.offset + batchSize };
        if (ids.length > 0) await report(snapshot());
      }
      return snapshot();
    },
  };
}

export type Repricer = ReturnType<typeof createRepricer>;
