import { readJsonFile } from "@tracelane/runtime";
import { AnomalyTypeSchema } from "@tracelane/trace-store";
import { z } from "zod";
import { DEFAULT_RULES, type AnomalyRules } from "./rules.js";

const positive = z.number().positive();

/** TRACELANE_ANOMALY_RULES file: every field optional, unknown fields rejected. */
export const RulesFileSchema = z
  .object({
    call: z.object({ latencyMs: positive, tokens: positive, costUsd: positive }).partial().strict().optional(),
    trace: z.object({ costUsd: positive, durationMs: positive }).partial().strict().optional(),
    baseline: z
      .object({ factor: positive, minSamples: z.number().int().min(1), window: z.number().int().min(1).max(10_000) })
      .partial()
      .strict()
      .optional(),
    disabled: z.array(AnomalyTypeSchema).optional(),
  })
  .strict();
export type RulesFile = z.infer<typeof RulesFileSchema>;

/** Env overrides (already validated by env.ts); undefined means "keep the file/default value". */
export interface RuleOverrides {
  callLatencyMs?: number;
  callTokens?: number;
  callCostUsd?: number;
  traceCostUsd?: number;
  traceDurationMs?: number;
  baselineFactor?: number;
  baselineMinSamples?: number;
  baselineWindow?: number;
  disabled?: string[];
}

export function parseRulesFile(json: unknown, origin = "anomaly rules"): RulesFile {
  const result = RulesFileSchema.safeParse(json);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    throw new Error(`${origin}: ${issue.path.join(".") || "(root)"}: ${issue.message}`);
  }
  return result.data;
}

/** Defaults, then the rules file (TRACELANE_ANOMALY_RULES), then the TRACELANE_RULE_* env overrides. */
export function loadRules(path: string | undefined, overrides: RuleOverrides = {}): AnomalyRules {
  let file: RulesFile = {};
  if (path) file = parseRulesFile(readJsonFile(path, "TRACELANE_ANOMALY_RULES"), `TRACELANE_ANOMALY_RULES ${path}`);
  const pick = <T>(...values: (T | undefined)[]): T => values.find((v) => v !== undefined) as T;
  const d = DEFAULT_RULES;
  const disabled = overrides.disabled
    ? z.array(AnomalyTypeSchema).parse(overrides.disabled)
    : (file.disabled ?? d.disabled);
  return {
    call: {
      latencyMs: pick(overrides.callLatencyMs, file.call?.latencyMs, d.call.latencyMs),
      tokens: pick(overrides.callTokens, file.call?.tokens, d.call.tokens),
      costUsd: pick(overrides.callCostUsd, file.call?.costUsd, d.call.costUsd),
    },
    trace: {
      costUsd: pick(overrides.traceCostUsd, file.trace?.costUsd, d.trace.costUsd),
      durationMs: pick(overrides.traceDurationMs, file.trace?.durationMs, d.trace.durationMs),
    },
    baseline: {
      factor: pick(overrides.baselineFactor, file.baseline?.factor, d.baseline.factor),
      minSamples: pick(overrides.baselineMinSamples, file.baseline?.minSamples, d.baseline.minSamples),
      window: pick(overrides.baselineWindow, file.baseline?.window, d.baseline.window),
    },
    disabled,
  };
}
