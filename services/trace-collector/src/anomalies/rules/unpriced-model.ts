import { defineCallRule } from "../rule.js";

export const unpricedModel = defineCallRule({
  type: "unpriced_model",
  fires: "the call's model is not in the price table (its cost is unknown, not $0)",
  recommendation: "Add the model to the price table (TRACELANE_PRICE_TABLE) so its cost is tracked.",
  settings: {},
  evaluate(call) {
    const { model, costUsd, inputTokens, outputTokens } = call.span.call;
    if (costUsd !== null) return undefined;
    const tokens = inputTokens + outputTokens;
    return {
      value: tokens,
      threshold: 0,
      unit: "tokens",
      message: `model "${model}" is not in the price table; ${tokens} tokens are not costed`,
    };
  },
});
