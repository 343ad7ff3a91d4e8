import { addUsd } from "@tracelane/pricing";
import type { CostStats, GroupCostStats, TraceKind, TraceSummary } from "./types.js";

/** Nearest-rank percentile of unsorted values; null for none. */
export function percentile(values: readonly number[], p: number): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[Math.min(rank, sorted.length) - 1]!;
}

interface Acc {
  calls: number;
  errors: number;
  unpriced: number;
  cost: number;
  /** Part of cost spent on calls whose result was not used. */
  retryCost: number;
  input: number;
  output: number;
  latencies: number[];
}

const newAcc = (): Acc => ({ calls: 0, errors: 0, unpriced: 0, cost: 0, retryCost: 0, input: 0, output: 0, latencies: [] });

/** Per stage and per model statistics over the model calls of `summaries`. */
export function aggregateCostStats(
  summaries: readonly TraceSummary[],
  window: { since: number; until: number; kind?: TraceKind; truncated?: boolean },
): CostStats {
  const stages = new Map<string, Acc>();
  const models = new Map<string, Acc>();
  const total = newAcc();
  for (const s of summaries) {
    for (const c of s.calls) {
      for (const acc of [
        total,
        stages.get(c.stage) ?? stages.set(c.stage, newAcc()).get(c.stage)!,
        models.get(c.model) ?? models.set(c.model, newAcc()).get(c.model)!,
      ]) {
        acc.calls++;
        if (c.error) acc.errors++;
        if (c.costUsd === null) acc.unpriced++;
        else {
          acc.cost = addUsd(acc.cost, c.costUsd);
          if (c.failedAttempt ?? c.error) acc.retryCost = addUsd(acc.retryCost, c.costUsd);
        }
        acc.input += c.inputTokens;
        acc.output += c.outputTokens;
        acc.latencies.push(c.durationMs);
      }
    }
  }
  const totalTokens = total.input + total.output;
  const group = (a: Acc): GroupCostStats => ({
    calls: a.calls,
    errors: a.errors,
    errorRate: a.calls === 0 ? 0 : a.errors / a.calls,
    unpricedCalls: a.unpriced,
    costUsd: a.cost,
    retryCostUsd: a.retryCost,
    usefulCostUsd: addUsd(a.cost, -a.retryCost),
    costShare: total.cost === 0 ? 0 : a.cost / total.cost,
    inputTokens: a.input,
    outputTokens: a.output,
    tokens: a.input + a.output,
    tokenShare: totalTokens === 0 ? 0 : (a.input + a.output) / totalTokens,
    latencyMs: { p50: percentile(a.latencies, 50), p95: percentile(a.latencies, 95) },
  });
  const record = (m: Map<string, Acc>) =>
    Object.fromEntries([...m.entries()].sort(([, a], [, b]) => b.cost - a.cost).map(([k, a]) => [k, group(a)]));
  return {
    since: window.since,
    until: window.until,
    kind: window.kind ?? "all",
    traces: summaries.length,
    calls: total.calls,
    costUsd: total.cost,
    retryCostUsd: total.retryCost,
    usefulCostUsd: addUsd(total.cost, -total.retryCost),
    unpricedCalls: total.unpriced,
    inputTokens: total.input,
    outputTokens: total.output,
    byStage: record(stages),
    byModel: record(models),
    truncated: window.truncated ?? false,
  };
}
