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

export function createCollectorMetrics(stats: CollectorStats, tracingStats?: () => TracingStatsLike): CollectorMetrics {
  const service = createServiceMetrics(tracingStats ? { tracingStats } : {});
  const tokens = service.histogram(METRICS.tokenUsage);
  const duration = service.histogram(METRICS.operationDuration);
  const cost = service.counter(METRICS.cost);
  const anomalies = service.counter(METRICS.anomalies);
  const lag = service.histogram(METRICS.ingestLag);
  // The span counts already live in CollectorStats (GET /stats): read them at scrape time.
  service.counterFrom(METRICS.collectorSpans, () => [
    [{ [ATTR_SPAN_OUTCOME]: "stored" }, stats.spansStored],
    [{ [ATTR_SPAN_OUTCOME]: "duplicate" }, stats.duplicateSpans],
    [{ [ATTR_SPAN_OUTCOME]: "dropped" }, stats.droppedSpans],
    [{ [ATTR_SPAN_OUTCOME]: "rejected" }, stats.rejectedSpans],
  ]);

  return {
    service,
    recordStored(fresh, stages, nowMs) {
      for (const s of fresh) {
        lag.observe({}, Math.max(0, nowMs - s.endMs) / 1000);
        const call = s.call;
        if (!call) continue;
        const a = s.attributes;
        const labels = {
          [ATTR_GEN_AI_OPERATION_NAME]: call.operation,
          [ATTR_GEN_AI_PROVIDER_NAME]: call.provider,
          [ATTR_GEN_AI_REQUEST_MODEL]: call.model,
          [ATTR_STAGE]: stages.get(s.spanId),
        };
        duration.observe(
          s.status === "error" ? { ...labels, [ATTR_ERROR_TYPE]: str(a[ATTR_ERROR_TYPE]) ?? "_OTHER" } : labels,
          s.durationMs / 1000,
        );
        // Only what the provider reported: a call that failed before its usage has no token counts.
        if (typeof a[ATTR_GEN_AI_USAGE_INPUT_TOKENS] === "number")
          tokens.observe({ ...labels, [ATTR_GEN_AI_TOKEN_TYPE]: "input" }, call.inputTokens);
        if (typeof a[ATTR_GEN_AI_USAGE_OUTPUT_TOKENS] === "number") {
          tokens.observe({ ...labels, [ATTR_GEN_AI_TOKEN_TYPE]: "output" }, call.outputTokens);
        }
        if (call.costUsd !== null && call.costUsd > 0) {
          cost.add(
            { [ATTR_GEN_AI_REQUEST_MODEL]: call.model, [ATTR_GEN_AI_PROVIDER_NAME]: call.provider, [ATTR_STAGE]: labels[ATTR_STAGE] },
            call.costUsd,
          );
        }
      }
    },
    recordAnomalies(list) {
      for (const a of list) anomalies.add({ [ATTR_ANOMALY_TYPE]: a.type });
    },
  };
}
