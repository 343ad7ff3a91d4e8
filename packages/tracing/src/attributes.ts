/**
 * Every span attribute (and span event) name this package writes, spelled once, like
 * opentelemetry-js-contrib's per-instrumentation `semconv.ts`. Standard OpenTelemetry names are
 * here too (the GenAI ones are still "incubating" upstream, so they are pinned here rather than
 * imported from a moving entry point); names we made up are marked. The file imports nothing, so
 * readers of stored spans (trace-store, the collector) use it as `@tracelane/tracing/attributes`
 * without loading the SDK. Names about research jobs (stage, research id...) are not tracing's to
 * know: they live in `@tracelane/pipeline`.
 */

// Errors and servers (stable semconv).
export const ATTR_ERROR_TYPE = "error.type";
export const ATTR_SERVER_ADDRESS = "server.address";
export const ATTR_SERVER_PORT = "server.port";
export const ATTR_URL_FULL = "url.full";
export const ATTR_URL_PATH = "url.path";

// Code (stable semconv) and traced() (ours: content, recorded only under content capture).
export const ATTR_CODE_FUNCTION_NAME = "code.function.name";
/** Ours: a traced function's arguments as JSON (content capture only). */
export const ATTR_FUNCTION_ARGUMENTS = "tracelane.function.arguments";
/** Ours: a traced function's result as JSON (content capture only). */
export const ATTR_FUNCTION_RESULT = "tracelane.function.result";

// HTTP (stable semconv).
export const ATTR_HTTP_REQUEST_METHOD = "http.request.method";
export const ATTR_HTTP_RESPONSE_STATUS_CODE = "http.response.status_code";
/** 0 for the first attempt of a request, n for its n-th resend. */
export const ATTR_HTTP_REQUEST_RESEND_COUNT = "http.request.resend_count";
export const ATTR_HTTP_ROUTE = "http.route";
/** Ours: ms between the end of the failed attempt and this resend. */
export const ATTR_RETRY_DELAY_MS = "tracelane.retry.delay_ms";
/** Event the traced fetch adds to the parent span before each resend. */
export const EVENT_RETRY = "retry";

// Messaging (semconv, plus two of ours).
export const ATTR_MESSAGING_SYSTEM = "messaging.system";
export const ATTR_MESSAGING_OPERATION_TYPE = "messaging.operation.type";
export const ATTR_MESSAGING_OPERATION_NAME = "messaging.operation.name";
export const ATTR_MESSAGING_DESTINATION_NAME = "messaging.destination.name";
export const ATTR_MESSAGING_MESSAGE_ID = "messaging.message.id";
/** Ours: 1-based delivery attempt of a BullMQ job. */
export const ATTR_JOB_ATTEMPT = "tracelane.job.attempt";
/** Ours: ms from publish to the start of processing. */
export const ATTR_QUEUE_WAIT_MS = "tracelane.queue.wait_ms";

// GenAI (incubating semconv, plus two of ours).
export const ATTR_GEN_AI_OPERATION_NAME = "gen_ai.operation.name";
export const ATTR_GEN_AI_PROVIDER_NAME = "gen_ai.provider.name";
/** Older name of gen_ai.provider.name, still read from foreign spans. */
export const ATTR_GEN_AI_SYSTEM = "gen_ai.system";
export const ATTR_GEN_AI_REQUEST_MODEL = "gen_ai.request.model";
export const ATTR_GEN_AI_REQUEST_MAX_TOKENS = "gen_ai.request.max_tokens";
/** true on a streamed call (the synthesis), which also records gen_ai.response.time_to_first_chunk (seconds). */
export const ATTR_GEN_AI_REQUEST_STREAM = "gen_ai.request.stream";
export const ATTR_GEN_AI_RESPONSE_MODEL = "gen_ai.response.model";
export const ATTR_GEN_AI_RESPONSE_ID = "gen_ai.response.id";
export const ATTR_GEN_AI_RESPONSE_FINISH_REASONS = "gen_ai.response.finish_reasons";
export const ATTR_GEN_AI_USAGE_INPUT_TOKENS = "gen_ai.usage.input_tokens";
export const ATTR_GEN_AI_USAGE_OUTPUT_TOKENS = "gen_ai.usage.output_tokens";
export const ATTR_GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS = "gen_ai.usage.cache_read.input_tokens";
export const ATTR_GEN_AI_USAGE_REASONING_OUTPUT_TOKENS = "gen_ai.usage.reasoning.output_tokens";
/** Ours: the provider's x-request-id response header (its id for the request, for correlation with its logs). */
export const ATTR_PROVIDER_REQUEST_ID = "tracelane.provider.request_id";
export const ATTR_GEN_AI_INPUT_MESSAGES = "gen_ai.input.messages";
export const ATTR_GEN_AI_OUTPUT_MESSAGES = "gen_ai.output.messages";
/** Ours: the call's cost in USD by the emitting service's price table. */
export const ATTR_USAGE_COST_USD = "tracelane.usage.cost_usd";
/** Ours: true when the model is not in the price table (cost unknown, never a silent 0). */
export const ATTR_COST_UNPRICED = "tracelane.cost.unpriced";
/** Ours: the version (content hash) of the price table that priced the call; also the label of tracelane.price_table.info. */
export const ATTR_PRICE_VERSION = "tracelane.price.version";

/** Event of a span whose work was cancelled from outside, and its reason (ours). */
export const EVENT_CANCELLED = "cancelled";
export const ATTR_CANCEL_REASON = "tracelane.cancel.reason";

// GenAI agents and tools (incubating semconv).
export const ATTR_GEN_AI_AGENT_NAME = "gen_ai.agent.name";
export const ATTR_GEN_AI_AGENT_ID = "gen_ai.agent.id";
export const ATTR_GEN_AI_TOOL_NAME = "gen_ai.tool.name";
export const ATTR_GEN_AI_TOOL_CALL_ID = "gen_ai.tool.call.id";
export const ATTR_GEN_AI_TOOL_TYPE = "gen_ai.tool.type";
export const ATTR_GEN_AI_TOOL_CALL_ARGUMENTS = "gen_ai.tool.call.arguments";
export const ATTR_GEN_AI_TOOL_CALL_RESULT = "gen_ai.tool.call.result";
/** Seconds from the request to the first streamed chunk (incubating semconv). */
export const ATTR_GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK = "gen_ai.response.time_to_first_chunk";

/**
 * Our attributes' names before they left the registry's reserved namespaces (gen_ai.*, messaging.* belong to
 * OpenTelemetry). Readers (the collector, the trace store) accept both for a release, so traces stored before
 * and senders not yet upgraded keep working; writers use only the new names.
 */
export const RENAMED_ATTRIBUTES: Readonly<Record<string, string>> = {
  "gen_ai.usage.cost": ATTR_USAGE_COST_USD,
  "messaging.bullmq.job.attempt": ATTR_JOB_ATTEMPT,
  "messaging.queue.wait_ms": ATTR_QUEUE_WAIT_MS,
};

/** `attributes` under the current names: an old name's value moves to its new name unless that is already set. */
export function withCurrentNames<V>(attributes: Record<string, V>): Record<string, V> {
  let out: Record<string, V> | undefined;
  for (const [old, current] of Object.entries(RENAMED_ATTRIBUTES)) {
    if (!(old in attributes)) continue;
    out ??= { ...attributes };
    if (!(current in out)) out[current] = out[old]!;
    delete out[old];
  }
  return out ?? attributes;
}
