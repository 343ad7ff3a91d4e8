import { RETRIED_CALL_ADVICE } from "../advice.js";
import { callName, defineCallRule } from "../rule.js";

/** A call that succeeded only after retrying (a call that failed in the end is an `error` instead). */
export const retries = defineCallRule({
  type: "retries",
  fires: "an answered call needed more than one HTTP attempt (value: the retries)",
  recommendation: "By cause of the failed attempts: 5xx → provider health; 429 → load and rate limits; timeout → the per-attempt timeout.",
  settings: {},
  evaluate(call) {
    if (call.failed || call.attempts <= 1) return undefined;
    const retried = call.attempts - 1;
    return {
      value: retried,
      threshold: 1,
      unit: "count",
      message: `${callName(call)} succeeded after ${retried} retr${retried === 1 ? "y" : "ies"}${call.cause && call.cause !== "unknown" ? ` (${call.cause.replace("_", " ")})` : ""}`,
      recommendation: RETRIED_CALL_ADVICE[call.cause ?? "unknown"],
    };
  },
});
