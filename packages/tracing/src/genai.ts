import { context, SpanKind, SpanStatusCode, trace, type Attributes, type Span } from "@opentelemetry/api";
import { recordError } from "./errors.js";

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
  /** Computed cost in USD; null when the model is not in the price table. */
  costUsd?: number | null;
}

/**
 * Run a model call inside a CLIENT span `chat <model>` following the GenAI
 * semantic conventions. Errors are recorded once here and rethrown.
 */
export async function withChatSpan<T>(req: ChatRequestInfo, fn: (span: Span) => Promise<T>): Promise<T> {
  const span = tracer().startSpan(`chat ${req.model}`, {
    kind: SpanKind.CLIENT,
    attributes: {
      "gen_ai.operation.name": "chat",
      "gen_ai.provider.name": req.provider,
      "gen_ai.request.model": req.model,
      ...(req.serverAddress ? { "server.address": req.serverAddress } : {}),
      ...(req.serverPort ? { "server.port": req.serverPort } : {}),
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
  if (res.responseModel) attrs["gen_ai.response.model"] = res.responseModel;
  if (res.responseId) attrs["gen_ai.response.id"] = res.responseId;
  if (res.finishReasons) attrs["gen_ai.response.finish_reasons"] = res.finishReasons;
  if (res.inputTokens !== undefined) attrs["gen_ai.usage.input_tokens"] = res.inputTokens;
  if (res.outputTokens !== undefined) attrs["gen_ai.usage.output_tokens"] = res.outputTokens;
  if (res.cachedInputTokens) attrs["gen_ai.usage.cache_read.input_tokens"] = res.cachedInputTokens;
  if (res.costUsd !== undefined) {
    if (res.costUsd === null) attrs["tracelane.cost.unpriced"] = true;
    else attrs["gen_ai.usage.cost"] = res.costUsd;
  }
  span.setAttributes(attrs);
  span.setStatus({ code: SpanStatusCode.OK });
}
