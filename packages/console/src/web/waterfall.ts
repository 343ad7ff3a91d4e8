/**
 * A trace's span tree as waterfall rows: what each row draws (queue wait, processing, model time,
 * HTTP attempts) and says (model, tokens, cost, finish reason, HTTP status, error), and how the
 * HTTP attempts of one model call are grouped as its retries. Pure: the page only renders it.
 */
import type { Anomaly, SpanNode } from "./schemas.js";

const A = {
  queueWait: "tracelane.queue.wait_ms",
  jobAttempt: "tracelane.job.attempt",
  httpStatus: "http.response.status_code",
  httpMethod: "http.request.method",
  resendCount: "http.request.resend_count",
  retryDelay: "tracelane.retry.delay_ms",
  finishReasons: "gen_ai.response.finish_reasons",
  errorType: "error.type",
  llmAttempts: "tracelane.llm.attempts",
} as const;

/** A piece of a row's bar, in ms from the trace start. */
export interface Segment {
  kind: "queue" | "processing" | "model" | "attempt" | "attempt-failed" | "span";
  fromMs: number;
  toMs: number;
}

export type RowRole = "model-call" | "http-attempt" | "queue" | "other";

export interface WaterfallRow {
  spanId: string;
  name: string;
  service: string;
  stage: string | undefined;
  depth: number;
  role: RowRole;
  status: string;
  segments: Segment[];
  startMs: number;
  durationMs: number;
  queueWaitMs: number | undefined;
  jobAttempt: number | undefined;
  model: string | undefined;
  inputTokens: number | undefined;
  outputTokens: number | undefined;
  costUsd: number | null | undefined;
  finishReasons: string[];
  httpStatus: number | undefined;
  /** 0 for a first attempt, n for the n-th resend (HTTP attempts under a model call). */
  resendCount: number | undefined;
  retryDelayMs: number | undefined;
  error: string | undefined;
  anomalies: Anomaly[];
  /** Set on a model call with more than one HTTP attempt: the rows that follow are its group. */
  retryGroup: { attempts: number; failed: number; statuses: number[] } | undefined;
  /** Set on each HTTP attempt that belongs to a retry group. */
  inRetryGroup: boolean;
}

export interface Waterfall {
  rows: WaterfallRow[];
  /** Epoch ms of the axis origin (the trace start, or an earlier queue wait's start). */
  originMs: number;
  /** Axis length in ms (at least 1). */
  spanMs: number;
  ticks: number[];
  /** Trace-level anomalies (no span): budget, SLO. */
  traceAnomalies: Anomaly[];
  stages: string[];
}

const num = (v: unknown): number | undefined => (typeof v === "number" && Number.isFinite(v) ? v : undefined);
const strings = (v: unknown): string[] =>
  Array.isArray(v) ? v.filter((x): x is string => typeof x === "string") : typeof v === "string" ? [v] : [];

const isHttpAttempt = (n: SpanNode, parent: SpanNode | undefined) =>
  parent?.call !== undefined && n.kind === "client" && n.attributes[A.httpMethod] !== undefined;

function errorOf(n: SpanNode): string | undefined {
  if (n.status !== "error") return undefined;
  const type = n.attributes[A.errorType];
  const parts = [typeof type === "string" ? type : undefined, n.statusMessage].filter(Boolean);
  return parts.length > 0 ? parts.join(": ") : "failed";
}

/** 1, 2, 5 × 10^k steps giving about `target` ticks over [0, spanMs]. */
export function niceTicks(spanMs: number, target = 6): number[] {
  const raw = spanMs / target;
  const pow = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * pow).find((s) => s >= raw) ?? 10 * pow;
  const ticks: number[] = [];
  for (let t = 0; t <= spanMs + 1e-9; t += step) ticks.push(Number(t.toFixed(6)));
  return ticks;
}

export function layoutWaterfall(tree: SpanNode[], anomalies: Anomaly[]): Waterfall {
  const bySpan = new Map<string, Anomaly[]>();
  const traceAnomalies: Anomaly[] = [];
  for (const a of anomalies) {
    if (!a.spanId) traceAnomalies.push(a);
    else bySpan.set(a.spanId, [...(bySpan.get(a.spanId) ?? []), a]);
  }

  // The axis starts where the earliest thing drawn starts: a span, or a queue wait before one.
  let origin = Infinity;
  let end = -Infinity;
  const visit = (n: SpanNode) => {
    origin = Math.min(origin, n.startMs - (num(n.attributes[A.queueWait]) ?? 0));
    end = Math.max(end, n.endMs);
    n.children.forEach(visit);
  };
  tree.forEach(visit);
  if (!Number.isFinite(origin)) origin = end = 0;
  const rel = (ms: number) => ms - origin;

  const rows: WaterfallRow[] = [];
  const stages: string[] = [];
  /** Model calls whose HTTP attempts are drawn as one retry group. */
  const groupedCalls = new Set<string>();
  const walk = (n: SpanNode, parent: SpanNode | undefined) => {
    if (n.stage && !stages.includes(n.stage)) stages.push(n.stage);
    const attempt = isHttpAttempt(n, parent);
    const role: RowRole = n.call ? "model-call" : attempt ? "http-attempt" : n.kind === "consumer" ? "queue" : "other";
    const wait = role === "queue" ? num(n.attributes[A.queueWait]) : undefined;
    const httpStatus = num(n.attributes[A.httpStatus]);
    const failedAttempt = attempt && (n.status === "error" || (httpStatus !== undefined && httpStatus >= 400));

    const segments: Segment[] = [];
    if (wait) segments.push({ kind: "queue", fromMs: rel(n.startMs - wait), toMs: rel(n.startMs) });
    if (role === "queue") {
      // Processing, with the model calls beneath it (children or deeper) drawn apart as model time.
      const calls: [number, number][] = [];
      const findCalls = (c: SpanNode) => {
        if (c.call) calls.push([Math.max(c.startMs, n.startMs), Math.min(c.endMs, n.endMs)]);
        else if (c.kind !== "producer") c.children.forEach(findCalls);
      };
      n.children.forEach(findCalls);
      calls.sort((a, b) => a[0] - b[0]);
      let at = n.startMs;
      for (const [from, to] of calls) {
        if (from > at) segments.push({ kind: "processing", fromMs: rel(at), toMs: rel(from) });
        if (to > from) segments.push({ kind: "model", fromMs: rel(Math.max(from, at)), toMs: rel(to) });
        at = Math.max(at, to);
      }
      if (n.endMs > at) segments.push({ kind: "processing", fromMs: rel(at), toMs: rel(n.endMs) });
    } else {
      const kind: Segment["kind"] = role === "model-call" ? "model" : attempt ? (failedAttempt ? "attempt-failed" : "attempt") : "span";
      segments.push({ kind, fromMs: rel(n.startMs), toMs: rel(n.endMs) });
    }

    const attemptChildren = n.call ? n.children.filter((c) => isHttpAttempt(c, n)).sort((a, b) => a.startMs - b.startMs) : [];
    const statuses = attemptChildren.map((c) => num(c.attributes[A.httpStatus])).filter((s): s is number => s !== undefined);
    const retryGroup =
      attemptChildren.length > 1
        ? {
            attempts: attemptChildren.length,
            failed: attemptChildren.filter((c) => c.status === "error" || (num(c.attributes[A.httpStatus]) ?? 0) >= 400).length,
            statuses,
          }
        : undefined;

    rows.push({
      spanId: n.spanId,
      name: n.name,
      service: n.service,
      stage: n.stage,
      depth: n.depth,
      role,
      status: n.status,
      segments,
      startMs: rel(n.startMs),
      durationMs: n.durationMs,
      queueWaitMs: wait,
      jobAttempt: role === "queue" ? num(n.attributes[A.jobAttempt]) : undefined,
      model: n.call?.model,
      inputTokens: n.call?.inputTokens,
      outputTokens: n.call?.outputTokens,
      costUsd: n.call ? n.call.costUsd : undefined,
      finishReasons: strings(n.attributes[A.finishReasons]),
      httpStatus,
      resendCount: attempt ? num(n.attributes[A.resendCount]) : undefined,
      retryDelayMs: attempt ? num(n.attributes[A.retryDelay]) : undefined,
      error: errorOf(n),
      anomalies: bySpan.get(n.spanId) ?? [],
      retryGroup,
      inRetryGroup: attempt && parent !== undefined && groupedCalls.has(parent.spanId),
    });
    if (retryGroup) groupedCalls.add(n.spanId);
    [...n.children].sort((a, b) => a.startMs - b.startMs).forEach((c) => walk(c, n));
  };
  [...tree].sort((a, b) => a.startMs - b.startMs).forEach((n) => walk(n, undefined));

  const spanMs = Math.max(1, end - origin);
  return { rows, originMs: origin, spanMs, ticks: niceTicks(spanMs), traceAnomalies, stages };
}
