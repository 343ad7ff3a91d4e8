import {
  ATTR_ANOMALY_TYPE,
  ATTR_GEN_AI_TOKEN_TYPE,
  ATTR_SPAN_OUTCOME,
  createServiceMetrics,
  METRICS,
  type ServiceMetrics,
  type TracingStatsLike,
} from "@tracelane/metrics";
import { ATTR_STAGE } from "@tracelane/pipeline";
import type { Anomaly, SpanRecord } from "@tracelane/trace-store";
import {
  ATTR_ERROR_TYPE,
  ATTR_GEN_AI_OPERATION_NAME,
  ATTR_GEN_AI_PROVIDER_NAME,
  ATTR_GEN_AI_REQUEST_MODEL,
  ATTR_GEN_AI_USAGE_INPUT_TOKENS,
  ATTR_GEN_AI_USAGE_OUTPUT_TOKENS,
} from "@tracelane/tracing/attributes";
import type { CollectorStats } from "./stats.js";

/**
 * Metrics derived from the spans the collector stores, like the OpenTelemetry Collector's
 * spanmetrics connector: every span is recorded once, when the insert script first stores it
 * (a redelivered or re-sent span is a duplicate and adds nothing), so N collector replicas each
 * count what they stored and Prometheus' sum() over them counts every span once.
 */
export interface CollectorMetrics {
  readonly service: ServiceMetrics;
  /** Spans stored for the first time, with the stage of each (resolveStages of their trace). */
  recordStored(fresh: readonly SpanRecord[], stages: ReadonlyMap<string, string | undefined>, nowMs: number): void;
  /** Anomalies stored for the first time. */
  recordAnomalies(anomalies: readonly Anomaly[]): void;
}

const str = (v: unknown) => (typeof v === "string" && v !== "" ? v : undefined);

export function createCollectorMetrics(
  stats: CollectorStats,
  tracingStats?: () => TracingStatsLike,
  priceVersion?: () => string,
): CollectorMetrics {
  const service = createServiceMetrics({ ...(tracingStats ? { tracingStats } : {}), ...(priceVersion ? { priceVersion } : {}) });
  const tokens = service.histogram(METRICS.tokenUsage);
  const duration = service.histogram(METRICS.operationDuration);
  const cost = service.counter(METRICS.cost);
  const anomalies = service.counter(METRICS.anomalies);
  const observeLag = service.histogram(METRICS.ingestLag).bind({});
  // The span counts already live in CollectorStats (GET /stats): read them at scrape time.
  service.counterFrom(METRICS.collectorSpans, () => [
    [{ [ATTR_SPAN_OUTCOME]: "stored" }, stats.spansStored],
    [{ [ATTR_SPAN_OUTCOME]: "duplicate" }, stats.duplicateSpans],
    [{ [ATTR_SPAN_OUTCOME]: "dropped" }, stats.droppedSpans],
    [{ [ATTR_SPAN_OUTCOME]: "rejected" }, stats.rejectedSpans],
    [{ [ATTR_SPAN_OUTCOME]: "refused" }, stats.foreignSpansRefused],
    [{ [ATTR_SPAN_OUTCOME]: "clamped" }, stats.spansClamped],
    [{ [ATTR_SPAN_OUTCOME]: "too_deep" }, stats.spansTooDeep],
  ]);

  /** The series of one kind of call (operation, provider, model, stage, error), labels translated once. */
  interface CallSeries {
    duration: (seconds: number) => void;
    input: (tokens: number) => void;
    output: (tokens: number) => void;
    cost: (usd?: number) => void;
  }
  const series = new Map<string, CallSeries>();
  const seriesOf = (call: NonNullable<SpanRecord["call"]>, stage: string | undefined, errorType: string | undefined): CallSeries => {
    const key = `${call.operation}\u0000${call.provider}\u0000${call.model}\u0000${stage}\u0000${errorType}`;
    let found = series.get(key);
    if (!found) {
      const labels = {
        [ATTR_GEN_AI_OPERATION_NAME]: call.operation,
        [ATTR_GEN_AI_PROVIDER_NAME]: call.provider,
        [ATTR_GEN_AI_REQUEST_MODEL]: call.model,
        [ATTR_STAGE]: stage,
      };
      found = {
        duration: duration.bind({ ...labels, [ATTR_ERROR_TYPE]: errorType }),
        input: tokens.bind({ ...labels, [ATTR_GEN_AI_TOKEN_TYPE]: "input" }),
        output: tokens.bind({ ...labels, [ATTR_GEN_AI_TOKEN_TYPE]: "output" }),
        cost: cost.bind({ [ATTR_GEN_AI_REQUEST_MODEL]: call.model, [ATTR_GEN_AI_PROVIDER_NAME]: call.provider, [ATTR_STAGE]: stage }),
      };
      series.set(key, found);
    }
    return found;
  };

  return {
    service,
    recordStored(fresh, stages, nowMs) {
      for (const s of fresh) {
        observeLag(Math.max(0, nowMs - s.endMs) / 1000);
        const call = s.call;
        if (!call) continue;
        const a = s.attributes;
        const errorType = s.status === "error" ? (str(a[ATTR_ERROR_TYPE]) ?? "_OTHER") : undefined;
        const calls = seriesOf(call, stages.get(s.spanId), errorType);
        calls.duration(s.durationMs / 1000);
        // Only what the provider reported: a call that failed before its usage has no token counts.
        if (typeof a[ATTR_GEN_AI_USAGE_INPUT_TOKENS] === "number") calls.input(call.inputTokens);
        if (typeof a[ATTR_GEN_AI_USAGE_OUTPUT_TOKENS] === "number") calls.output(call.outputTokens);
        if (call.costUsd !== null && call.costUsd > 0) calls.cost(call.costUsd);
      }
    },
    recordAnomalies(list) {
      for (const a of list) anomalies.add({ [ATTR_ANOMALY_TYPE]: a.type });
    },
  };
}
