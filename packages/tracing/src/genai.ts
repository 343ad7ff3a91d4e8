import { context, SpanKind, SpanStatusCode, trace, type Attributes, type Span } from "@opentelemetry/api";
import { recordError } from "./errors.js";
import {
  ATTR_COST_UNPRICED,
  ATTR_GEN_AI_OPERATION_NAME,
  ATTR_GEN_AI_PROVIDER_NAME,
  ATTR_GEN_AI_REQUEST_MODEL,
  ATTR_GEN_AI_RESPONSE_FINISH_REASONS,
  ATTR_GEN_AI_RESPONSE_ID,
  ATTR_GEN_AI_RESPONSE_MODEL,
  ATTR_GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS,
  ATTR_USAGE_COST_USD,
  ATTR_GEN_AI_USAGE_INPUT_TOKENS,
  ATTR_GEN_AI_USAGE_OUTPUT_TOKENS,
  ATTR_GEN_AI_USAGE_REASONING_OUTPUT_TOKENS,
  ATTR_PRICE_VERSION,
  ATTR_PROVIDER_REQUEST_ID,
  ATTR_SERVER_ADDRESS,
  ATTR_SERVER_PORT,
} from "./attributes.js";

const tracer = () => trace.getTracer("@tracelane/tracing/genai");

export interface ChatRequestInfo {
  /** Requested model name. */
  model: string;
  /** gen_ai.provider.name, e.g. "openai", "gcp.gemini", "deepseek". */
  provider: string;
  serverAddress?: string;
  serverPort?: number;
  /** Extra attributes (e.g. the pipeline stage) set at start. */
  attributes?: Attributes;
}

export interface ChatResponseInfo {
  responseModel?: string;
  responseId?: string;
  finishReasons?: string[];
  inputTokens?: number;
  outputTokens?: number;
  cachedInputTokens?: number;
  /** Reasoning tokens (already counted in outputTokens, as providers report them). */
  reasoningTokens?: number;
  /** The provider's `x-request-id` response header. */
  providerRequestId?: string;
  /** Computed cost in USD; null when the model is not in the price table. */
  costUsd?: number | null;
  /** The version of the price table that priced it (with a cost). */
  priceVersion?: string;
}

/**
 * Run a model call inside a CLIENT span `chat <model>` following the GenAI
 * semantic conventions. Errors are recorded once here and rethrown.
 */
export async function withChatSpan<T>(req: ChatRequestInfo, fn: (span: Span) => Promise<T>): Promise<T> {
  const span = tracer().startSpan(`chat ${req.model}`, {
    kind: SpanKind.CLIENT,
    attributes: {
      [ATTR_GEN_AI_OPERATION_NAME]: "chat",
      [ATTR_GEN_AI_PROVIDER_NAME]: req.provider,
      [ATTR_GEN_AI_REQUEST_MODEL]: req.model,
      ...(req.serverAddress ? { [ATTR_SERVER_ADDRESS]: req.serverAddress } : {}),
      ...(req.serverPort ? { [ATTR_SERVER_PORT]: req.serverPort } : {}),
      ...req.attributes,
    },
  });
  try {
    return await context.with(trace.setSpan(context.active(), span), () => fn(span));
  } catch (err) {
    recordError(span, err);
    throw err;
  } finally {
    span.end();
  }
}

export function recordChatResponse(span: Span, res: ChatResponseInfo): void {
  const attrs: Attributes = {};
  if (res.responseModel) attrs[ATTR_GEN_AI_RESPONSE_MODEL] = res.responseModel;
  if (res.responseId) attrs[ATTR_GEN_AI_RESPONSE_ID] = res.responseId;
  if (res.finishReasons) attrs[ATTR_GEN_AI_RESPONSE_FINISH_REASONS] = res.finishReasons;
  if (res.inputTokens !== undefined) attrs[ATTR_GEN_AI_USAGE_INPUT_TOKENS] = res.inputTokens;
  if (res.outputTokens !== undefined) attrs[ATTR_GEN_AI_USAGE_OUTPUT_TOKENS] = res.outputTokens;
  if (res.cachedInputTokens) attrs[ATTR_GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] = res.cachedInputTokens;
  if (res.reasoningTokens) attrs[ATTR_GEN_AI_USAGE_REASONING_OUTPUT_TOKENS] = res.reasoningTokens;
  if (res.providerRequestId) attrs[ATTR_PROVIDER_REQUEST_ID] = res.providerRequestId;
  if (res.costUsd !== undefined) {
    if (res.costUsd === null) attrs[ATTR_COST_UNPRICED] = true;
    else attrs[ATTR_USAGE_COST_USD] = res.costUsd;
  }
  if (res.priceVersion) attrs[ATTR_PRICE_VERSION] = res.priceVersion;
  span.setAttributes(attrs);
  span.setStatus({ code: SpanStatusCode.OK });
}
