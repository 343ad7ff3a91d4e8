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
  /** The trace it belongs to (named on its flag, over a window of traces). */
  traceId?: string;
}

/** A call the swap could not price: the swapped model's window is smaller than what the call used. */
export interface WhatIfFlag {
  stage: string;
  traceId?: string;
  spanId?: string;
  model: string;
  whatIfModel: string;
  reason: "context_window";
  message: string;
}

export interface WhatIfStage {
  /** The model most of the stage's calls ran on (`models` has them all). */
  model: string;
  /** Calls per model the stage ran on. */
  models: Record<string, number>;
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
  /** The first `maxFlags` flagged calls; `flaggedCalls` counts them all. */
  flags: WhatIfFlag[];
  flaggedCalls: number;
  assumptions: string[];
}

/** A swap that cannot be priced at all: its model is not in the price table. */
export class UnknownSwapModelError extends Error {
  override readonly name = "UnknownSwapModelError";
  constructor(
    readonly stage: string,
    readonly model: string,
    readonly known: readonly string[] = [],
  ) {
    super(
      `stage ${stage}: "${model.slice(0, 80)}" is not in the price table, so nothing can be priced with it; use a model it lists${
        known.length > 0 ? ` (${known.join(", ")})` : ""
      }, or add it to TRACELANE_PRICE_TABLE`,
    );
  }
}

const ASSUMPTIONS = [
  "Every call keeps its recorded input, cached input and output token counts; another model may answer longer or shorter, tokenize differently, and answer better or worse.",
  "Calls of stages not swapped keep their recorded cost; swapped calls are priced at the other model's price in force now.",
  "A call whose input and output do not fit the swapped model's context window is flagged, not priced, and left out of both totals.",
];

/** Flags kept by default: enough to see which calls and why, bounded over a window of many traces. */
const WHAT_IF_MAX_FLAGS = 100;

interface StageNano {
  actual: number;
  whatIf: number;
  calls: number;
  unpriced: number;
  flagged: number;
  models: Map<string, number>;
}

/**
 * What calls would have cost with each stage in `swaps` on another model, added up call by call (so a
 * window of many traces is priced in batches without holding its calls): the same token counts priced at
 * that model's rates, to 1e-9 USD (sums in whole nano-dollars). Calls whose recorded cost is unknown
 * (unpriced model) are left out of both sides, so the saving compares like with like.
 */
export class WhatIfPricer {
  private readonly stages = new Map<string, StageNano>();
  private readonly flags: WhatIfFlag[] = [];
  private flagged = 0;
  private actual = 0;
  private swapped = 0;

  /** Throws UnknownSwapModelError for a swap to a model the table does not list. */
  constructor(
    private readonly swaps: Readonly<Record<string, string>>,
    private readonly prices: PriceSource,
    private readonly maxFlags = WHAT_IF_MAX_FLAGS,
  ) {
    for (const [stage, model] of Object.entries(swaps)) {
      if (!prices.lookup(model))
        throw new UnknownSwapModelError(
          stage,
          model,
          prices.entries.map((e) => e.model),
        );
    }
  }

  add(calls: Iterable<RecordedCall>): this {
    for (const call of calls) this.addCall(call);
    return this;
  }

  private addCall(call: RecordedCall): void {
    let row = this.stages.get(call.stage);
    if (!row) this.stages.set(call.stage, (row = { actual: 0, whatIf: 0, calls: 0, unpriced: 0, flagged: 0, models: new Map() }));
    row.calls++;
    row.models.set(call.model, (row.models.get(call.model) ?? 0) + 1);
    if (call.costUsd === null) {
      row.unpriced++;
      return;
    }
    const target = this.swaps[call.stage];
    const actualNano = toNanoUsd(call.costUsd);
    let whatIfNano = actualNano;
    if (target) {
      const window = this.prices.lookup(target)!.contextWindow;
      const used = call.inputTokens + call.outputTokens;
      if (window !== undefined && used > window) {
        row.flagged++;
        this.flagged++;
        if (this.flags.length < this.maxFlags) {
          this.flags.push({
            stage: call.stage,
            ...(call.traceId ? { traceId: call.traceId } : {}),
            ...(call.spanId ? { spanId: call.spanId } : {}),
            model: call.model,
            whatIfModel: target,
            reason: "context_window",
            message: `a ${call.stage} call used ${used} tokens; ${target}'s context window is ${window}`,
          });
        }
        return;
      }
      whatIfNano = toNanoUsd(this.prices.cost(target, call).costUsd!);
    }
    row.actual += actualNano;
    row.whatIf += whatIfNano;
    this.actual += actualNano;
    this.swapped += whatIfNano;
  }

  result(): WhatIfResult {
    const byStage = Object.fromEntries(
      [...this.stages.entries()].map(([stage, r]): [string, WhatIfStage] => {
        const models = [...r.models.entries()].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
        const model = models[0]![0];
        return [
          stage,
          {
            model,
            models: Object.fromEntries(models),
            whatIfModel: this.swaps[stage] ?? model,
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
      actualCostUsd: fromNanoUsd(this.actual),
      whatIfCostUsd: fromNanoUsd(this.swapped),
      savingUsd: fromNanoUsd(this.actual - this.swapped),
      savingShare: this.actual > 0 ? (this.actual - this.swapped) / this.actual : 0,
      byStage,
      flags: [...this.flags],
      flaggedCalls: this.flagged,
      assumptions: ASSUMPTIONS,
    };
  }
}
