import { z } from "zod";
import { callName, defineCallRule, fmtMs, reaches } from "../rule.js";

/** Adaptive: slower than factor x the model's rolling p95. Silent until enough latencies were seen. */
export const latencyVsBaseline = defineCallRule({
  type: "latency_vs_baseline",
  fires: "an answered call ≥ factor × the rolling p95 of its model, once minSamples latencies were seen",
  recommendation:
    "Much slower than this model usually is: check the provider's status; consider a smaller model, caching, or a timeout with a fallback model.",
  settings: {
    factor: { schema: z.number().positive().default(3), env: "TRACELANE_RULE_BASELINE_FACTOR", file: "baseline.factor", doc: "× p95" },
    minSamples: {
      schema: z.number().int().min(1).default(20),
      env: "TRACELANE_RULE_BASELINE_MIN_SAMPLES",
      file: "baseline.minSamples",
      doc: "latencies before it fires",
    },
    window: {
      schema: z.number().int().min(1).max(10_000).default(200),
      env: "TRACELANE_RULE_BASELINE_WINDOW",
      file: "baseline.window",
      doc: "latencies kept per model",
    },
  },
  evaluate(call, { factor, minSamples }, { baseline }) {
    if (call.failed || !baseline || baseline.p95 === null || baseline.p95 <= 0 || baseline.samples < minSamples) return undefined;
    const threshold = factor * baseline.p95;
    if (!reaches(call.latencyMs, threshold)) return undefined;
    return {
      value: call.latencyMs,
      threshold,
      unit: "ms",
      message:
        `${callName(call)} took ${fmtMs(call.latencyMs)}, ${(call.latencyMs / baseline.p95).toFixed(1)}x the p95 of ${call.span.call.model} ` +
        `(${fmtMs(baseline.p95)} over the last ${baseline.samples} calls; threshold ${factor}x)`,
    };
  },
});
