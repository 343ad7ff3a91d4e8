export { injectContext, extractContext, carrierFromHeaders, type Carrier } from "./carrier.js";
export { withPublishSpan, withProcessSpan, type PublishOptions, type ProcessOptions } from "./messaging.js";
export { withChatSpan, recordChatResponse, type ChatRequestInfo, type ChatResponseInfo } from "./genai.js";
export { withAgentSpan, withToolSpan, type AgentSpanInfo, type ToolFailure, type ToolSpanInfo } from "./agent.js";
export { recordError, recordCancellation, errorType } from "./errors.js";
export { createLogger, censorSecretFields, type Logger, type LoggerOptions } from "./logger.js";
export {
  startTracing,
  startServiceTracing,
  tracingStats,
  type StartTracingOptions,
  type TracingHandle,
  type TracingStats,
  type DestinationName,
} from "./sdk.js";
export type { ExportStats } from "./counted-batch-processor.js";
export { resolveTracingConfig, type TracingConfig, type SpanStreamConfig } from "./tracing-env.js";
export {
  SPAN_STREAM_DEFAULT,
  SPAN_STREAM_SHARDS_DEFAULT,
  SPAN_STREAM_SHARDS_MAX,
  envSpanStreamShards,
  spanStreamShards,
  spanStreamShardIndex,
  spanStreamShardOf,
} from "./span-stream.js";
export { RedisStreamSpanExporter, type RedisStreamSpanExporterOptions } from "./redis-stream-exporter.js";
export {
  captureContent,
  contentCaptureMode,
  redactSecrets,
  CONTENT_CAPTURE_MODES,
  type ContentCaptureMode,
  type CapturedContent,
  type ChatMessage,
} from "./content.js";
export { createTracedFetch, type TracedFetchOptions } from "./traced-fetch.js";
export { httpServerTracing, type HttpServerTracingOptions } from "./http-server.js";
export { UntracedHttpRootsSampler, type HttpRequestInfo, type UntracedRootRule } from "./sampler.js";
export { currentTraceId } from "./current-trace.js";
export { traced, type TracedOptions } from "./traced.js";
export { OTLP_TRACE_PROTO_FILES } from "./otlp-proto.js";
export * from "./attributes.js";
