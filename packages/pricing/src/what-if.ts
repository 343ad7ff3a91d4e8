import { fromNanoUsd, toNanoUsd } from "./money.js";
import type { PriceSource } from "./price-table.js";

/** One model call as a trace recorded it: what it was sent and answered, and what it cost. */
export interface RecordedCall {
  stage: string;
  model: string;
  inputTokens: number;
  outputTokens: number;
  cachedInputTokens?: number;
  /** null when its model was unpriced. */
  costUsd: number | null;
  spanId?: string;
}

/** A call the swap could not price: the swapped model's window is smaller than what the call used. */
export interface WhatIfFlag {
  stage: string;
  spanId?: string;
  model: string;
  whatIfModel: string;
  reason: "context_window";
  message: string;
}

export interface WhatIfStage {
  model: string;
  whatIfModel: string;
  calls: number;
  actualCostUsd: number;
  whatIfCostUsd: number;
  /** Calls left out of both sums: unpriced as they ran, or not fitting the swapped model (see flags). */
  unpricedCalls: number;
  flaggedCalls: number;
}

export interface WhatIfResult {
  actualCostUsd: number;
  whatIfCostUsd: number;
  savingUsd: number;
  /** savingUsd / actualCostUsd (0 when nothing was spent). */
  savingShare: number;
  byStage: Record<string, WhatIfStage>;
  flags: WhatIfFlag[];
  assumptions: string[];
}

/** A swap that cannot be priced at all: its model is not in the price table. */
export class UnknownSwapModelError extends Error {
  override readonly name = "UnknownSwapModelError";
  constructor(
    readonly stage: string,
    readonly model: string,
  ) {
    super(
      `stage ${stage}: "${model}" is not in the price table, so nothing can be priced with it; use a model it lists (GET /v1/stats/costs shows those in use)`,
    );
  }
}

const ASSUMPTIONS = [
  "Every call keeps its recorded input, cached input and output token counts; another model may answer longer or shorter, tokenize differently, and answer better or worse.",
  "Calls of stages not swapped keep their recorded cost.",
  "A call whose input and output do not fit the swapped model's context window is flagged, not priced, and left out of both totals.",
];

/**
 * What `calls` would have cost with each stage in `swaps` on another model: the same token counts priced at
 * that model's rates, to 1e-9 USD (sums in whole nano-dollars). Calls whose recorded cost is unknown (unpriced
 * model) are left out of both sides, so the saving compares like with like.
 */
export function whatIf(calls: readonly RecordedCall[], swaps: Readonly<Record<string, string>>, prices: PriceSource): WhatIfResult {
  for (const [stage, model] of Object.entries(swaps)) if (!prices.lookup(model)) throw new UnknownSwapModelError(stage, model);
  const nano = new Map<
    string,
    { actual: number; whatIf: number; calls: number; unpriced: number; flagged: number; models: Map<string, number> }
  >();
  const flags: WhatIfFlag[] = [];
  let actual = 0;
  let swapped = 0;
  for (const call of calls) {
    const row = nano.get(call.stage) ?? { actual: 0, whatIf: 0, calls: 0, unpriced: 0, flagged: 0, models: new Map<string, number>() };
    nano.set(call.stage, row);
    row.calls++;
    row.models.set(call.model, (row.models.get(call.model) ?? 0) + 1);
    if (call.costUsd === null) {
      row.unpriced++;
      continue;
    }
    const target = swaps[call.stage];
    let whatIfNano = toNanoUsd(call.costUsd);
    if (target) {
      const window = prices.lookup(target)!.contextWindow;
      if (window !== undefined && call.inputTokens + call.outputTokens > window) {
        row.flagged++;
        flags.push({
          stage: call.stage,
          ...(call.spanId ? { spanId: call.spanId } : {}),
          model: call.model,
          whatIfModel: target,
          reason: "context_window",
          message: `a ${call.stage} call used ${call.inputTokens + call.outputTokens} tokens; ${target}'s context window is ${window}`,
        });
        continue;
      }
      whatIfNano = toNanoUsd(prices.cost(target, call).costUsd!);
    }
    row.actual += toNanoUsd(call.costUsd);
    row.whatIf += whatIfNano;
    actual += toNanoUsd(call.costUsd);
    swapped += whatIfNano;
  }
  const byStage = Object.fromEntries(
    [...nano.entries()].map(([stage, r]) => {
      const model = [...r.models.entries()].sort((a, b) => b[1] - a[1])[0]![0];
      return [
        stage,
        {
          model,
          whatIfModel: swaps[stage] ?? model,
          calls: r.calls,
          actualCostUsd: fromNanoUsd(r.actual),
          whatIfCostUsd: fromNanoUsd(r.whatIf),
          unpricedCalls: r.unpriced,
          flaggedCalls: r.flagged,
        },
      ];
    }),
  );
  return {
    actualCostUsd: fromNanoUsd(actual),
    whatIfCostUsd: fromNanoUsd(swapped),
    savingUsd: fromNanoUsd(actual - swapped),
    savingShare: actual > 0 ? (actual - swapped) / actual : 0,
    byStage,
    flags,
    assumptions: ASSUMPTIONS,
  };
}
