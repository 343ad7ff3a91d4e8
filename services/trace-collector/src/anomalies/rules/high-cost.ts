import { z } from "zod";
import { callName, defineCallRule, fmtUsd, reaches } from "../rule.js";

export const highCost = defineCallRule({
  type: "high_cost",
  fires: "the cost of a priced call ≥ threshold",
  recommendation: "Use a cheaper model for this step, or cut its input tokens.",
  settings: {
    costUsd: { schema: z.number().positive().default(0.1), env: "TRACELANE_RULE_CALL_COST_USD", file: "call.costUsd", doc: "USD" },
  },
  evaluate(call, { costUsd }) {
    const cost = call.span.call.costUsd;
    if (cost === null || !reaches(cost, costUsd)) return undefined;
    return {
      value: cost,
      threshold: costUsd,
      unit: "usd",
      message: `${callName(call)} cost ${fmtUsd(cost)} (threshold ${fmtUsd(costUsd)})`,
    };
  },
});
