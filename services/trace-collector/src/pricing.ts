import { roundUsd, type PriceTable } from "@tracelane/pricing";
import type { ModelCall, SpanRecord } from "@tracelane/trace-store";

const str = (v: unknown) => (typeof v === "string" && v !== "" ? v : undefined);
const num = (v: unknown) => (typeof v === "number" && Number.isFinite(v) && v >= 0 ? v : 0);

/**
 * The model call carried by a span (GenAI semantic conventions), priced with the collector's
 * own table: the response model (what was billed) first, then the requested model. A model the
 * table does not know gets costUsd null (and the unpriced_model anomaly), never $0.
 */
export function modelCallOf(span: SpanRecord, prices: PriceTable): ModelCall | undefined {
  const a = span.attributes;
  const requestModel = str(a["gen_ai.request.model"]);
  const responseModel = str(a["gen_ai.response.model"]);
  const model = requestModel ?? responseModel;
  if (!model) return undefined;
  const usage = {
    inputTokens: num(a["gen_ai.usage.input_tokens"]),
    outputTokens: num(a["gen_ai.usage.output_tokens"]),
    cachedInputTokens: num(a["gen_ai.usage.cache_read.input_tokens"]),
  };
  let cost = prices.cost(responseModel ?? model, usage);
  if (!cost.priced && responseModel && requestModel && responseModel !== requestModel) cost = prices.cost(requestModel, usage);
  const reported = a["gen_ai.usage.cost"];
  const provider = str(a["gen_ai.provider.name"]) ?? str(a["gen_ai.system"]);
  const operation = str(a["gen_ai.operation.name"]);
  return {
    model,
    ...(responseModel && responseModel !== model ? { responseModel } : {}),
    ...(provider ? { provider } : {}),
    ...(operation ? { operation } : {}),
    ...usage,
    costUsd: cost.costUsd,
    ...(typeof reported === "number" ? { reportedCostUsd: roundUsd(reported) } : {}),
  };
}

/** The span with its `call` filled in (or unchanged when it is not a model call). */
export function priceSpan(span: SpanRecord, prices: PriceTable): SpanRecord {
  const call = modelCallOf(span, prices);
  return call ? { ...span, call } : span;
}
