import type { Anomaly, AnomalyType, SpanRecord, TraceSummary } from "@tracelane/trace-store";
import { isRetrySpan } from "../assemble/summary.js";

/** Thresholds; a rule fires when value >= threshold. */
export interface AnomalyRules {
  call: { latencyMs: number; tokens: number; costUsd: number };
  trace: { costUsd: number; durationMs: number };
  /** latency_vs_baseline: a call slower than factor x the rolling p95 of its model. */
  baseline: { factor: number; minSamples: number; window: number };
  disabled: AnomalyType[];
}

export const DEFAULT_RULES: AnomalyRules = {
  call: { latencyMs: 2_000, tokens: 8_000, costUsd: 0.1 },
  trace: { costUsd: 0.5, durationMs: 30_000 },
  baseline: { factor: 3, minSamples: 20, window: 200 },
  disabled: [],
};

export const RECOMMENDATIONS: Record<AnomalyType, string> = {
  high_latency: "Use a smaller, faster model for this step, or cache responses to repeated prompts.",
  latency_vs_baseline:
    "Much slower than this model usually is: check the provider's status; consider a smaller model, caching, or a timeout with a fallback model.",
  high_tokens: "Truncate the context or summarise it before the call (trim retrieved documents and chat history).",
  high_cost: "Use a cheaper model for this step, or cut its input tokens.",
  error: "Retry transient errors with backoff, or fall back to another model or provider.",
  retries: "Check provider health and rate limits (429s); spread the load or raise the limits.",
  unpriced_model: "Add the model to the price table (TRACELANE_PRICE_TABLE) so its cost is tracked.",
  trace_cost_over_budget: "Move the costliest stage to a cheaper model or cut its tokens (see byStage in the trace summary).",
  trace_duration_over_slo: "Find the slowest stage (queue wait vs model time); use faster models, cache, or add workers.",
};

/** value >= threshold, tolerant of float rounding (0.1 computed from tokens is 0.1). */
export const reaches = (value: number, threshold: number) => value >= threshold - 1e-9 * Math.max(1, Math.abs(threshold));

const fmtMs = (v: number) => `${Math.round(v).toLocaleString("en-US")} ms`;
const fmtUsd = (v: number) => `$${v.toFixed(4)}`;

export interface SpanContext {
  stage?: string;
  detectedAt: string;
}

function anomaly(
  type: AnomalyType,
  traceId: string,
  span: SpanRecord | undefined,
  ctx: SpanContext,
  value: number,
  threshold: number,
  unit: Anomaly["unit"],
  message: string,
): Anomaly {
  const model = span?.call?.model;
  return {
    type,
    traceId,
    spanId: span?.spanId ?? "",
    ...(span ? { spanName: span.name } : {}),
    ...(ctx.stage ? { stage: ctx.stage } : {}),
    ...(model ? { model } : {}),
    value,
    threshold,
    unit,
    message,
    recommendation: RECOMMENDATIONS[type],
    detectedAt: ctx.detectedAt,
  };
}

const on = (rules: AnomalyRules, type: AnomalyType) => !rules.disabled.includes(type);

/** Per model call: high_latency, high_tokens, high_cost, error, unpriced_model. */
export function callAnomalies(span: SpanRecord, rules: AnomalyRules, ctx: SpanContext): Anomaly[] {
  const call = span.call;
  if (!call) return [];
  const out: Anomaly[] = [];
  const id = span.traceId;
  const what = `${span.name}${ctx.stage ? ` (${ctx.stage})` : ""}`;
  if (on(rules, "high_latency") && reaches(span.durationMs, rules.call.latencyMs)) {
    out.push(anomaly("high_latency", id, span, ctx, span.durationMs, rules.call.latencyMs, "ms",
      `${what} took ${fmtMs(span.durationMs)} (threshold ${fmtMs(rules.call.latencyMs)})`));
  }
  const tokens = call.inputTokens + call.outputTokens;
  if (on(rules, "high_tokens") && reaches(tokens, rules.call.tokens)) {
    out.push(anomaly("high_tokens", id, span, ctx, tokens, rules.call.tokens, "tokens",
      `${what} used ${tokens.toLocaleString("en-US")} tokens (${call.inputTokens} in / ${call.outputTokens} out; threshold ${rules.call.tokens})`));
  }
  if (on(rules, "high_cost") && call.costUsd !== null && reaches(call.costUsd, rules.call.costUsd)) {
    out.push(anomaly("high_cost", id, span, ctx, call.costUsd, rules.call.costUsd, "usd",
      `${what} cost ${fmtUsd(call.costUsd)} (threshold ${fmtUsd(rules.call.costUsd)})`));
  }
  if (on(rules, "error") && span.status === "error") {
    const type = span.attributes["error.type"];
    out.push(anomaly("error", id, span, ctx, 1, 1, "count",
      `${what} failed${typeof type === "string" ? ` with ${type}` : ""}${span.statusMessage ? `: ${span.statusMessage}` : ""}`));
  }
  if (on(rules, "unpriced_model") && call.costUsd === null) {
    out.push(anomaly("unpriced_model", id, span, ctx, tokens, 0, "tokens",
      `model "${call.model}" is not in the price table; ${tokens} tokens are not costed`));
  }
  return out;
}

/** A redelivered job (attempt > 1) or a resent HTTP request. */
export function retryAnomaly(span: SpanRecord, rules: AnomalyRules, ctx: SpanContext): Anomaly | undefined {
  if (!on(rules, "retries") || !isRetrySpan(span)) return undefined;
  const attempt = span.attributes["messaging.bullmq.job.attempt"];
  const resend = span.attributes["http.request.resend_count"];
  const isJob = typeof attempt === "number" && attempt > 1;
  const value = isJob ? attempt - 1 : Number(resend);
  const status = span.attributes["http.response.status_code"];
  const message = isJob
    ? `${span.name} ran attempt ${attempt} (the job was retried)`
    : `${span.name} was resent ${value} time(s)${status !== undefined ? ` (last status ${status})` : ""}`;
  return anomaly("retries", span.traceId, span, ctx, value, 1, "count", message);
}

/** Latency outlier against the model's rolling p95; silent until minSamples latencies were seen. */
export function baselineAnomaly(
  span: SpanRecord,
  baseline: { p95: number | null; samples: number },
  rules: AnomalyRules,
  ctx: SpanContext,
): Anomaly | undefined {
  if (!on(rules, "latency_vs_baseline") || !span.call || baseline.p95 === null) return undefined;
  if (baseline.samples < rules.baseline.minSamples || baseline.p95 <= 0) return undefined;
  const threshold = rules.baseline.factor * baseline.p95;
  if (!reaches(span.durationMs, threshold)) return undefined;
  return anomaly("latency_vs_baseline", span.traceId, span, ctx, span.durationMs, threshold, "ms",
    `${span.name} took ${fmtMs(span.durationMs)}, ${(span.durationMs / baseline.p95).toFixed(1)}x the p95 of ${span.call.model} ` +
      `(${fmtMs(baseline.p95)} over the last ${baseline.samples} calls; threshold ${rules.baseline.factor}x)`);
}

/** Per trace: trace_cost_over_budget, trace_duration_over_slo (spanId ""). */
export function traceAnomalies(summary: TraceSummary, rules: AnomalyRules, detectedAt: string): Anomaly[] {
  const out: Anomaly[] = [];
  const ctx = { detectedAt };
  if (on(rules, "trace_cost_over_budget") && reaches(summary.costUsd, rules.trace.costUsd)) {
    const top = Object.entries(summary.byStage).sort(([, a], [, b]) => (b.costUsd ?? 0) - (a.costUsd ?? 0))[0];
    out.push(anomaly("trace_cost_over_budget", summary.traceId, undefined, ctx, summary.costUsd, rules.trace.costUsd, "usd",
      `trace cost ${fmtUsd(summary.costUsd)} (budget ${fmtUsd(rules.trace.costUsd)})${top ? `; costliest stage: ${top[0]}` : ""}`));
  }
  if (on(rules, "trace_duration_over_slo") && reaches(summary.durationMs, rules.trace.durationMs)) {
    out.push(anomaly("trace_duration_over_slo", summary.traceId, undefined, ctx, summary.durationMs, rules.trace.durationMs, "ms",
      `trace took ${fmtMs(summary.durationMs)} (SLO ${fmtMs(rules.trace.durationMs)}; queue wait ${fmtMs(summary.queueWaitMs)}, model time ${fmtMs(summary.modelTimeMs)})`));
  }
  return out;
}

/**
 * Every rule that depends only on the stored spans (not on the adaptive baseline). Idempotent:
 * the same spans give the same anomalies (dedupe happens in Redis on (trace, span, type)).
 */
export function evaluateTrace(
  spans: readonly SpanRecord[],
  summary: TraceSummary,
  stages: ReadonlyMap<string, string | undefined>,
  rules: AnomalyRules,
  detectedAt: string,
): Anomaly[] {
  const out: Anomaly[] = [];
  for (const s of spans) {
    const stage = stages.get(s.spanId);
    const ctx = stage ? { stage, detectedAt } : { detectedAt };
    out.push(...callAnomalies(s, rules, ctx));
    const retry = retryAnomaly(s, rules, ctx);
    if (retry) out.push(retry);
  }
  out.push(...traceAnomalies(summary, rules, detectedAt));
  return out;
}
