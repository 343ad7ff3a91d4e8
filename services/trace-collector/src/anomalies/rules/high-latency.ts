import { z } from "zod";
import { callName, defineCallRule, fmtMs, reaches } from "../rule.js";

/** A model that answers slowly. Only answered calls: a failed one is an `error`, and retries' backoff does not count. */
export const highLatency = defineCallRule({
  type: "high_latency",
  fires: "an answered call's model time (from its last HTTP attempt) ≥ threshold",
  recommendation: "Use a smaller, faster model for this step, or cache responses to repeated prompts.",
  settings: {
    latencyMs: { schema: z.number().positive().default(2_000), env: "TRACELANE_RULE_CALL_LATENCY_MS", file: "call.latencyMs", doc: "ms" },
  },
  evaluate(call, { latencyMs }) {
    if (call.failed || !reaches(call.latencyMs, latencyMs)) return undefined;
    const retried = call.attempts > 1 ? ` on its last of ${call.attempts} attempts` : "";
    return {
      value: call.latencyMs,
      threshold: latencyMs,
      unit: "ms",
      message: `${callName(call)} took ${fmtMs(call.latencyMs)}${retried} (threshold ${fmtMs(latencyMs)})`,
    };
  },
});
