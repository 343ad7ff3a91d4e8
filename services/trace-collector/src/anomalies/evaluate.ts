import type { Anomaly, SpanRecord, TraceSummary } from "@tracelane/trace-store";
import type { Baseline } from "./baseline.js";
import { modelCalls, type ModelCall } from "./model-calls.js";
import { RULES, type AnomalyRules } from "./registry.js";
import type { CallRule, Finding, TraceRule } from "./rule.js";

export interface Evaluation {
  anomalies: Anomaly[];
  /** The trace's model calls, as the rules saw them (the assembler feeds baselines from them). */
  calls: ModelCall[];
}

/**
 * Every enabled rule over one trace: call rules once per model call (not per HTTP attempt or
 * retry), trace rules once on the summary. Idempotent: the same spans give the same anomalies
 * (dedupe happens in Redis on (trace, span, type)). `baselineFor` gives a call's model baseline
 * when the adaptive rule should judge it (calls seen for the first time).
 */
export function evaluateTrace(
  spans: readonly SpanRecord[],
  summary: TraceSummary,
  stages: ReadonlyMap<string, string | undefined>,
  rules: AnomalyRules,
  detectedAt: string,
  baselineFor: (call: ModelCall) => Baseline | undefined = () => undefined,
): Evaluation {
  const enabled = RULES.filter((r) => !rules.disabled.includes(r.type));
  const callRules = enabled.filter((r): r is CallRule => r.scope === "call");
  const traceRules = enabled.filter((r): r is TraceRule => r.scope === "trace");
  const calls = modelCalls(spans, stages);
  const anomalies: Anomaly[] = [];

  for (const call of calls) {
    const baseline = baselineFor(call);
    const ctx = baseline ? { baseline } : {};
    for (const rule of callRules) {
      const found = rule.evaluate(call, rules.settings[rule.type], ctx);
      if (found) anomalies.push(callAnomaly(rule, call, found, detectedAt));
    }
  }
  for (const rule of traceRules) {
    const found = rule.evaluate(summary, rules.settings[rule.type]);
    if (found) anomalies.push(traceAnomaly(rule, summary.traceId, found, detectedAt));
  }
  return { anomalies, calls };
}

function callAnomaly(rule: CallRule, call: ModelCall, f: Finding, detectedAt: string): Anomaly {
  return {
    type: rule.type,
    traceId: call.span.traceId,
    spanId: call.span.spanId,
    spanName: call.span.name,
    stage: call.stage,
    model: call.span.call.model,
    attempts: call.attempts,
    ...(call.cause ? { cause: call.cause } : {}),
    ...findingFields(rule, f, detectedAt),
  };
}

function traceAnomaly(rule: TraceRule, traceId: string, f: Finding & { stage: string }, detectedAt: string): Anomaly {
  return {
    type: rule.type,
    traceId,
    spanId: "",
    stage: f.stage,
    ...findingFields(rule, f, detectedAt),
  };
}

/** What a rule found, as every anomaly reports it (the rule's own advice unless the finding has a better one). */
function findingFields(rule: CallRule | TraceRule, f: Finding, detectedAt: string) {
  return {
    value: f.value,
    threshold: f.threshold,
    unit: f.unit,
    message: f.message,
    recommendation: f.recommendation ?? rule.recommendation,
    detectedAt,
  };
}
