import { z } from "zod";
import { defineTraceRule, fmtMs, reaches } from "../rule.js";

export const traceDurationOverSlo = defineTraceRule({
  type: "trace_duration_over_slo",
  fires: "the duration of the whole trace ≥ SLO (stage: the one with the most model time)",
  recommendation: "Find the slowest stage (queue wait vs model time); use faster models, cache, or add workers.",
  settings: {
    durationMs: {
      schema: z.number().positive().default(30_000),
      env: "TRACELANE_RULE_TRACE_DURATION_MS",
      file: "trace.durationMs",
      doc: "ms per trace",
    },
  },
  evaluate(summary, { durationMs }) {
    if (!reaches(summary.durationMs, durationMs)) return undefined;
    const [stage] = Object.entries(summary.byStage).sort(([, a], [, b]) => b.durationMs - a.durationMs)[0] ?? ["unknown"];
    return {
      stage,
      value: summary.durationMs,
      threshold: durationMs,
      unit: "ms",
      message:
        `trace took ${fmtMs(summary.durationMs)} (SLO ${fmtMs(durationMs)}; queue wait ${fmtMs(summary.queueWaitMs)}, ` +
        `model time ${fmtMs(summary.modelTimeMs)}; slowest stage: ${stage})`,
    };
  },
});
