import { z } from "zod";
import { callName, defineCallRule, reaches } from "../rule.js";

export const highTokens = defineCallRule({
  type: "high_tokens",
  fires: "input + output tokens of a call ≥ threshold",
  recommendation: "Truncate the context or summarise it before the call (trim retrieved documents and chat history).",
  settings: {
    tokens: {
      schema: z.number().int().positive().default(8_000),
      env: "TRACELANE_RULE_CALL_TOKENS",
      file: "call.tokens",
      doc: "tokens in + out",
    },
  },
  evaluate(call, { tokens }) {
    const { inputTokens, outputTokens } = call.span.call;
    const used = inputTokens + outputTokens;
    if (!reaches(used, tokens)) return undefined;
    return {
      value: used,
      threshold: tokens,
      unit: "tokens",
      message: `${callName(call)} used ${used.toLocaleString("en-US")} tokens (${inputTokens} in / ${outputTokens} out; threshold ${tokens})`,
    };
  },
});
