import type { StageTokenFlow } from "@tracelane/trace-store";
import { z } from "zod";
import { defineTraceRule, reaches } from "../rule.js";

const tokens = (n: number) => n.toLocaleString("en-US");

/**
 * A stage that reads far more than it was handed: its largest call's input tokens ≥ factor × (the
 * previous stage's output tokens + promptTokens). What the numbers are, from what the spans carry:
 *
 * - The stage's input is its *largest call's* input, not the sum over its calls. Each call of a stage
 *   is sent the hand-over (a fan-out's claim call: one claim of it) plus its prompt, so one context
 *   window is where bloat shows and where trimming helps. A sum would grow with the number of claims,
 *   tool turns and retried calls (an answer asked for again, a trim-and-retry after an overflow) and
 *   fire on every research with many claims; those have their own signals (`retries`, cost rules).
 * - The previous stage's output is the *sum* of its calls' output tokens: all of a fan-out's claim
 *   verdicts are handed over together. The previous stage is the nearest earlier one in the trace's
 *   token flow (pipeline order) with calls, past a stage that made none (a fact-check without claims).
 * - The stage's own prompt (system prompt, question, tool and answer-schema definitions) has no token
 *   count of its own on the spans: gen_ai.usage.input_tokens is the whole prompt, and the stage runner
 *   records only what it trimmed (tracelane.context.trimmed_tokens). So it is the `promptTokens`
 *   setting: an estimate for every stage; raise it for long questions or big tool definitions.
 *
 * A stage is judged only once it, the previous stage and every stage between them are complete (every
 * span of their calls has arrived, see `StageTokenFlow.complete`): the first detection of an anomaly is
 * kept, so a hand-over counted before all its spans arrived would make the threshold too low, and a
 * stage judged early would report a largest call that is not its largest. One anomaly per trace: the stage
 * that exceeds its threshold most (the others are named in the message).
 *
 * Not everything a stage reads comes from the stage before it (synthesis reads the analysis too, a
 * claim check's later turns read tool results); the factor leaves room for that. When it fires
 * anyway, the recommendation is the same: the material going into the call is what to cut.
 */
export const contextBloat = defineTraceRule({
  type: "context_bloat",
  fires:
    "the input tokens of a stage's largest call ≥ factor × (the previous stage's output tokens + promptTokens) (stage: the one most over; judged once it and the stages before it have all arrived)",
  recommendation:
    "Trim or summarise the material handed over from the previous stage before it goes into this stage's calls (keep the claims, figures and sources it needs), or cap the previous stage's output; see tokenFlow in the trace summary.",
  settings: {
    factor: {
      schema: z.number().positive().default(3),
      env: "TRACELANE_RULE_BLOAT_FACTOR",
      file: "bloat.factor",
      doc: "× (previous stage's output + prompt)",
    },
    promptTokens: {
      schema: z.number().int().min(0).default(1_000),
      env: "TRACELANE_RULE_BLOAT_PROMPT_TOKENS",
      file: "bloat.promptTokens",
      doc: "tokens of a stage's own prompt (instructions, question, tool and schema definitions), an estimate",
    },
  },
  evaluate(summary, { factor, promptTokens }) {
    const flow = summary.tokenFlow ?? [];
    const over: { step: StageTokenFlow; before: StageTokenFlow; threshold: number }[] = [];
    flow.forEach((step, i) => {
      const before = handedOverBy(flow, i);
      if (step.calls === 0 || !step.complete || !before) return;
      const threshold = factor * (before.outputTokens + promptTokens);
      if (reaches(step.maxCallInputTokens, threshold)) over.push({ step, before, threshold });
    });
    const [worst, ...others] = over.sort((a, b) => b.step.maxCallInputTokens / b.threshold - a.step.maxCallInputTokens / a.threshold);
    if (!worst) return undefined;
    const { step, before, threshold } = worst;
    const call = step.calls > 1 ? `its largest of ${step.calls} calls` : "its call";
    return {
      stage: step.stage,
      value: step.maxCallInputTokens,
      threshold,
      unit: "tokens",
      message:
        `${step.stage}: ${call} read ${tokens(step.maxCallInputTokens)} input tokens, ≥ ${factor} × ` +
        `(${tokens(before.outputTokens)} output tokens of ${before.stage} + ${tokens(promptTokens)} prompt tokens) = ${tokens(threshold)}` +
        (others.length > 0 ? `; also over: ${others.map((o) => o.step.stage).join(", ")}` : ""),
    };
  },
});

/** The stage whose output flow[i] was handed: the nearest earlier one with calls, once it and every stage between are complete. */
function handedOverBy(flow: readonly StageTokenFlow[], i: number): StageTokenFlow | undefined {
  for (let j = i - 1; j >= 0; j--) {
    const step = flow[j]!;
    if (!step.complete) return undefined;
    if (step.calls > 0) return step;
  }
  return undefined;
}
