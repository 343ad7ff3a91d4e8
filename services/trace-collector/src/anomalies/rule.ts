import type { Anomaly, AnomalyType, TraceSummary } from "@tracelane/trace-store";
import type { z } from "zod";
import type { Baseline } from "./baseline.js";
import type { ModelCall } from "./model-calls.js";

/**
 * One threshold (or parameter) of a rule: its schema with its default, and where an operator sets
 * it — the rules file (TRACELANE_ANOMALY_RULES) and an env variable, which wins over the file.
 */
export interface RuleSetting {
  /** Validates a value from the file or the env; `.default()` gives the value when neither sets it. */
  schema: z.ZodDefault<z.ZodNumber>;
  /** Env variable that overrides the file. */
  env: string;
  /** Path in the rules file, e.g. "call.latencyMs". */
  file: string;
  /** For the docs: what the number means (unit included), e.g. "ms a call may take". */
  doc: string;
}

export type RuleSettings = Record<string, RuleSetting>;
export type SettingValues<P extends RuleSettings> = { [K in keyof P]: number };

/** What a rule found; the registry adds the trace, span, stage, model and attempts. */
export interface Finding {
  value: number;
  threshold: number;
  unit: Anomaly["unit"];
  message: string;
  /** When the cause calls for other advice than the rule's default recommendation. */
  recommendation?: string;
}

interface CallRuleContext {
  /** The model's rolling latency baseline, only for a call seen for the first time (and only when it succeeded). */
  baseline?: Baseline;
}

interface RuleBase<P extends RuleSettings> {
  type: AnomalyType;
  /** The docs table's "fires when" column. */
  fires: string;
  /** Default advice (a finding may give advice that fits its cause better). */
  recommendation: string;
  settings: P;
}

/** Evaluated once per model call (a `chat <model>` span with all its HTTP attempts), never per retry. */
export interface CallRule<P extends RuleSettings = RuleSettings> extends RuleBase<P> {
  scope: "call";
  evaluate(call: ModelCall, settings: SettingValues<P>, ctx: CallRuleContext): Finding | undefined;
}

/** Evaluated once per trace, on its summary; `stage` names the stage the finding points at. */
export interface TraceRule<P extends RuleSettings = RuleSettings> extends RuleBase<P> {
  scope: "trace";
  evaluate(summary: TraceSummary, settings: SettingValues<P>): (Finding & { stage: string }) | undefined;
}

export type AnomalyRule = CallRule<RuleSettings> | TraceRule<RuleSettings>;

// Identity helpers: they only let TypeScript check `evaluate` against the rule's own settings.
export const defineCallRule = <P extends RuleSettings>(rule: Omit<CallRule<P>, "scope">): CallRule<P> => ({ scope: "call", ...rule });
export const defineTraceRule = <P extends RuleSettings>(rule: Omit<TraceRule<P>, "scope">): TraceRule<P> => ({ scope: "trace", ...rule });

/** value >= threshold, tolerant of float rounding (0.1 computed from tokens is 0.1). */
export const reaches = (value: number, threshold: number) => value >= threshold - 1e-9 * Math.max(1, Math.abs(threshold));

export const fmtMs = (v: number) => `${Math.round(v).toLocaleString("en-US")} ms`;
export const fmtUsd = (v: number) => `$${v.toFixed(4)}`;

/** How a call is named in messages: `chat gpt-4.1 (analysis)`. */
export const callName = (call: ModelCall) => `${call.span.name} (${call.stage})`;
