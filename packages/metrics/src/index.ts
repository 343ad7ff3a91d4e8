export { prometheusName, prometheusLabel, type MetricType } from "./names.js";
export {
  METRICS,
  metricsDocTable,
  GEN_AI_TOKEN_BUCKETS,
  GEN_AI_DURATION_BUCKETS,
  HTTP_DURATION_BUCKETS,
  ATTR_GEN_AI_TOKEN_TYPE,
  ATTR_SPAN_OUTCOME,
  ATTR_ANOMALY_TYPE,
  ATTR_JOB_OUTCOME,
  ATTR_QUEUE_STATE,
  ATTR_RESEARCH_STATUS,
  ATTR_EXPORT_DESTINATION,
  ATTR_REJECTION_REASON,
  type Metric,
  type MetricDefinition,
  type MetricSource,
} from "./catalog.js";
export {
  createServiceMetrics,
  type ServiceMetrics,
  type ServiceMetricsOptions,
  type HistogramInstrument,
  type CounterInstrument,
  type Readings,
  type Attributes,
  type TracingStatsLike,
} from "./registry.js";
