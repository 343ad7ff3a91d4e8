import { ANOMALY_TYPES, type AnomalyType } from "@tracelane/trace-store";
import type { AnomalyRule, CallRule, RuleSetting, RuleSettings, SettingValues, TraceRule } from "./rule.js";
import { contextBloat } from "./rules/context-bloat.js";
import { errorRule } from "./rules/error.js";
import { highCost } from "./rules/high-cost.js";
import { highLatency } from "./rules/high-latency.js";
import { highTokens } from "./rules/high-tokens.js";
import { latencyVsBaseline } from "./rules/latency-vs-baseline.js";
import { retries } from "./rules/retries.js";
import { traceCostOverBudget } from "./rules/trace-cost-over-budget.js";
import { traceDurationOverSlo } from "./rules/trace-duration-over-slo.js";
import { unpricedModel } from "./rules/unpriced-model.js";

/**
 * Every anomaly rule, in the order anomalies are listed. Adding a rule: its file in rules/, one
 * line here, and its type in trace-store's ANOMALY_TYPES (the vocabulary the api validates
 * `?type=` against; the registry test checks the two agree). The rules file schema, the env
 * overrides, the collector's evaluation and the README table all come from this list.
 */
export const RULES: readonly AnomalyRule[] = [
  highLatency,
  highTokens,
  highCost,
  errorRule,
  unpricedModel,
  latencyVsBaseline,
  retries,
  traceCostOverBudget,
  traceDurationOverSlo,
  contextBloat,
] as readonly AnomalyRule[];

/** Every setting of every rule, with the rule it belongs to. */
export const RULE_SETTINGS: readonly { rule: AnomalyRule; name: string; setting: RuleSetting }[] = RULES.flatMap((rule) =>
  Object.entries(rule.settings).map(([name, setting]) => ({ rule, name, setting })),
);

/** Env variable that switches rules off by type, e.g. "high_tokens,retries". */
export const RULES_DISABLED_ENV = "TRACELANE_RULES_DISABLED";
/** Env variable naming the rules file. */
export const RULES_FILE_ENV = "TRACELANE_ANOMALY_RULES";

/** The rules as configured: every rule's settings (defaults filled in) and the types switched off. */
export interface AnomalyRules {
  settings: Record<AnomalyType, Record<string, number>>;
  disabled: AnomalyType[];
}

export const DEFAULT_RULES: AnomalyRules = {
  settings: Object.fromEntries(
    RULES.map((r) => [r.type, Object.fromEntries(Object.entries(r.settings).map(([name, s]) => [name, s.schema.parse(undefined)]))]),
  ) as AnomalyRules["settings"],
  disabled: [],
};

/** A copy of `base` with some settings changed, e.g. `withSettings(DEFAULT_RULES, { high_latency: { latencyMs: 500 } })`. */
export function withSettings(
  base: AnomalyRules,
  changes: Partial<Record<AnomalyType, Record<string, number>>>,
  disabled = base.disabled,
): AnomalyRules {
  const settings = { ...base.settings };
  for (const [type, values] of Object.entries(changes) as [AnomalyType, Record<string, number>][])
    settings[type] = { ...settings[type], ...values };
  return { settings, disabled };
}

// The vocabulary and the registry must not drift apart (a type without a rule would never fire).
const missing = ANOMALY_TYPES.filter((t) => !RULES.some((r) => r.type === t));
const extra = RULES.filter((r) => !(ANOMALY_TYPES as readonly string[]).includes(r.type));
if (missing.length > 0 || extra.length > 0) {
  throw new Error(
    `anomaly rule registry and ANOMALY_TYPES disagree: no rule for ${missing.join(", ") || "-"}; not a type: ${extra.map((r) => r.type).join(", ") || "-"}`,
  );
}

/** A rule's default settings, typed as its evaluate takes them (for tests and tools). */
export const defaultsOf = <P extends RuleSettings>(rule: CallRule<P> | TraceRule<P>): SettingValues<P> =>
  DEFAULT_RULES.settings[rule.type] as SettingValues<P>;
