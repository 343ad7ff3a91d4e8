export {
  traceKeys,
  anomalyField,
  anomalyMember,
  parseAnomalyMember,
  memberEntry,
  TRACE_PREFIX_DEFAULT,
  ANOMALY_STREAM_DEFAULT,
  TRACE_ID_RE,
  TRACE_PARTITIONS,
  tracePartition,
  type OneTraceKeys,
  type PartitionKeys,
  type TraceKeys,
} from "./keys.js";
export {
  ANOMALY_TYPES,
  AnomalyTypeSchema,
  AnomalySchema,
  TRACE_STATUSES,
  TRACE_KINDS,
  type Anomaly,
  type AnomalyType,
  type AnomalyQuery,
  type AttributeValue,
  type Attributes,
  type CallBreakdown,
  type CallStat,
  type CostStats,
  type CostStatsQuery,
  type TraceKind,
  type GroupCostStats,
  type ModelCall,
  type SpanClamped,
  type SpanEventRecord,
  type SpanLinkRecord,
  type SpanKindName,
  type SpanRecord,
  type SpanStatusName,
  type SpanTreeNode,
  type StageTokenFlow,
  type TraceDetail,
  type TraceFilter,
  type TraceListItem,
  type TraceListPage,
  type TraceSort,
  type TraceStatus,
  type TraceSummary,
} from "./types.js";
export {
  createTraceReader,
  InvalidCursorError,
  type TraceReader,
  type ReadScope,
  type TraceReaderOptions,
  type TraceVisibility,
  type WindowScan,
} from "./reader.js";
export { renderReplay } from "./replay.js";
export { buildTree, flattenTree, resolveStages, spanDepths, MAX_TRACE_DEPTH_DEFAULT } from "./tree.js";
export { aggregateCostStats, percentile } from "./stats.js";
export { pruneTraces, sweepExpired } from "./prune.js";
export { indexSize } from "@tracelane/runtime";
export { RedisScript, batchWithScripts, loadScripts } from "./redis-script.js";
export { jaegerTraceUrl } from "./jaeger.js";
export {
  FORECAST_WINDOW_DEFAULT,
  FORECAST_SCRIPTS,
  forecastSamplesOf,
  parseTakenSamples,
  queueHoldForecast,
  queueRecordSamples,
  queueSettledForecasts,
  queueTakeForecast,
  readStageSamples,
  type StageSample,
  type TraceSamples,
} from "./forecast.js";
