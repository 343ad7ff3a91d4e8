import { ATTR_ERROR_TYPE } from "@tracelane/tracing/attributes";
import { FAILED_CALL_ADVICE } from "../advice.js";
import { callName, defineCallRule } from "../rule.js";

/** A call that failed after all its attempts: one anomaly per call, with its attempts and the advice its cause needs. */
export const errorRule = defineCallRule({
  type: "error",
  fires: "a call failed after all its attempts (one anomaly per call, with `attempts` and `cause`)",
  recommendation: "By cause: 5xx → provider status and a fallback model; 429 → load and rate limits; timeout → timeout and model size.",
  settings: {},
  evaluate(call) {
    if (!call.failed) return undefined;
    const type = call.span.attributes[ATTR_ERROR_TYPE];
    const last = call.lastStatus !== undefined ? `; last attempt: ${call.lastStatus}` : "";
    return {
      value: call.attempts,
      threshold: 1,
      unit: "count",
      message:
        `${callName(call)} failed after ${call.attempts} attempt${call.attempts === 1 ? "" : "s"}` +
        `${typeof type === "string" ? ` with ${type}` : ""}${last}${call.span.statusMessage ? `: ${call.span.statusMessage}` : ""}`,
      recommendation: FAILED_CALL_ADVICE[call.cause ?? "unknown"],
    };
  },
});
