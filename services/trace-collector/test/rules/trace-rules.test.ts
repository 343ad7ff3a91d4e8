import type { TraceSummary } from "@tracelane/trace-store";
import { describe, expect, it } from "vitest";
import { defaultsOf } from "../../src/anomalies/registry.js";
import { traceCostOverBudget } from "../../src/anomalies/rules/trace-cost-over-budget.js";
import { traceDurationOverSlo } from "../../src/anomalies/rules/trace-duration-over-slo.js";

const summary = (costUsd: number, durationMs: number) =>
  ({
    traceId: "t",
    costUsd,
    durationMs,
    queueWaitMs: 0,
    modelTimeMs: 0,
    byStage: { analysis: { costUsd: 0.1, durationMs: 900 }, synthesis: { costUsd: 0.4, durationMs: 300 } },
  }) as unknown as TraceSummary;

describe("trace_cost_over_budget", () => {
  it("flags a trace at the $0.50 budget and not at $0.4999, naming the costliest stage", () => {
    expect(traceCostOverBudget.evaluate(summary(0.5, 10), defaultsOf(traceCostOverBudget))).toMatchObject({
      stage: "synthesis",
      value: 0.5,
    });
    expect(traceCostOverBudget.evaluate(summary(0.4999, 10), defaultsOf(traceCostOverBudget))).toBeUndefined();
  });
});

describe("trace_duration_over_slo", () => {
  it("flags a trace at the 30 s SLO and not at 29,999 ms, naming the stage with the most model time", () => {
    expect(traceDurationOverSlo.evaluate(summary(0, 30_000), defaultsOf(traceDurationOverSlo))).toMatchObject({ stage: "analysis" });
    expect(traceDurationOverSlo.evaluate(summary(0, 29_999), defaultsOf(traceDurationOverSlo))).toBeUndefined();
  });
});
