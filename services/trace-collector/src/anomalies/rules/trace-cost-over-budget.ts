import { z } from "zod";
import { defineTraceRule, fmtUsd, reaches } from "../rule.js";

export const traceCostOverBudget = defineTraceRule({
  type: "trace_cost_over_budget",
  fires: "the cost of the whole trace ≥ budget (stage: the costliest)",
  recommendation: "Move the costliest stage to a cheaper model or cut its tokens (see byStage in the trace summary).",
  settings: {
    costUsd: {
      schema: z.number().positive().default(0.5),
      env: "TRACELANE_RULE_TRACE_COST_USD",
      file: "trace.costUsd",
      doc: "USD per trace",
    },
  },
  evaluate(summary, { costUsd }) {
    if (!reaches(summary.costUsd, costUsd)) return undefined;
    const [stage] = Object.entries(summary.byStage).sort(([, a], [, b]) => (b.costUsd ?? 0) - (a.costUsd ?? 0))[0] ?? ["unknown"];
    return {
      stage,
      value: summary.costUsd,
      threshold: costUsd,
      unit: "usd",
      message: `trace cost ${fmtUsd(summary.costUsd)} (budget ${fmtUsd(costUsd)}); costliest stage: ${stage}`,
    };
  },
});
