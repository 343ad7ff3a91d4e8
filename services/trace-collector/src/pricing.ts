import { roundUsd, type PriceSource } from "@tracelane/pricing";
import type { ModelCall, SpanRecord } from "@tracelane/trace-store";
import {
  ATTR_GEN_AI_OPERATION_NAME,
  ATTR_GEN_AI_PROVIDER_NAME,
  ATTR_GEN_AI_REQUEST_MODEL,
  ATTR_GEN_AI_RESPONSE_MODEL,
  ATTR_GEN_AI_SYSTEM,
  ATTR_GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS,
  ATTR_USAGE_COST_USD,
  ATTR_GEN_AI_USAGE_INPUT_TOKENS,
  ATTR_GEN_AI_USAGE_OUTPUT_TOKENS,
} from "@tracelane/tracing/attributes";

const str = (v: unknown) => (typeof v === "string" && v !== "" ? v : undefined);
const num = (v: unknown) => (typeof v === "number" && Number.isFinite(v) && v >= 0 ? v : 0);

/**
 * The model call carried by a span (GenAI semantic conventions), priced with the collector's
 * own table by the price in force at the span's start: the response model (what was billed) first,
 * then the requested model. A model the table does not know gets costUsd null (and the
 * unpriced_model anomaly), never $0. A priced call records the table's version.
 */
export function modelCallOf(span: SpanRecord, prices: PriceSource): ModelCall | undefined {
  const a = span.attributes;
  const requestModel = str(a[ATTR_GEN_AI_REQUEST_MODEL]);
  const responseModel = str(a[ATTR_GEN_AI_RESPONSE_MODEL]);
  const model = requestModel ?? responseModel;
  if (!model) return undefined;
  const usage = {
    inputTokens: num(a[ATTR_GEN_AI_USAGE_INPUT_TOKENS]),
    outputTokens: num(a[ATTR_GEN_AI_USAGE_OUTPUT_TOKENS]),
    cachedInputTokens: num(a[ATTR_GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS]),
  };
  let cost = prices.cost(responseModel ?? model, usage, span.startMs);
  if (!cost.priced && responseModel && requestModel && responseModel !== requestModel)
    cost = prices.cost(requestModel, usage, span.startMs);
  const reported = a[ATTR_USAGE_COST_USD];
  const provider = str(a[ATTR_GEN_AI_PROVIDER_NAME]) ?? str(a[ATTR_GEN_AI_SYSTEM]);
  const operation = str(a[ATTR_GEN_AI_OPERATION_NAME]);
  return {
    model,
    ...(responseModel && responseModel !== model ? { responseModel } : {}),
    ...(provider ? { provider } : {}),
    ...(operation ? { operation } : {}),
    ...usage,
    costUsd: cost.costUsd,
    ...(typeof reported === "number" ? { reportedCostUsd: roundUsd(reported) } : {}),
    ...(cost.priced ? { priceVersion: cost.version } : {}),
  };
}
