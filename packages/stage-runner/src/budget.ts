import type { PriceSource } from "@tracelane/pricing";
import { BudgetExceededError, BudgetUnverifiableError, DailySpendCapError } from "./errors.js";

/** The research's spender's daily cap (DAILY_SPEND_CAP_USD) and what was left of it when the work began. */
export interface DailySpend {
  capUsd: number;
  leftUsd: number;
}

export interface CallBudget {
  stage: string;
  model: string;
  prices: PriceSource;
  inputTokens: number;
  maxOutputTokens: number;
  allowUnpricedModels?: boolean | undefined;
  /** The research's maxCostUsd, if any. */
  maxCostUsd?: number | undefined;
  /** What the research has spent so far, this call's step included. */
  spentUsd: number;
  /** The spender's daily cap and what is left of it now. */
  daily?: DailySpend | undefined;
}

/**
 * The research's budget (maxCostUsd) and its spender's daily cap, whichever is tighter, checked on the call's
 * estimate (input tokens + the whole output allowance) before it is made. Throws what stopped it.
 */
export function checkCallBudget(b: CallBudget): void {
  const { stage, model: m, maxCostUsd: max, daily } = b;
  if (max === undefined && daily === undefined) return;
  const estimate = b.prices.cost(m, { inputTokens: b.inputTokens, outputTokens: b.maxOutputTokens }).costUsd;
  if (estimate === null) {
    if (b.allowUnpricedModels) return; // the operator accepted unknown costs; the record marks it unpriced
    const what = max !== undefined ? `maxCostUsd $${max}` : `the daily spend cap (DAILY_SPEND_CAP_USD $${daily!.capUsd})`;
    throw new BudgetUnverifiableError(
      `Stopped before ${stage}: ${m} has no price in the price table, so ${what} cannot be enforced. ` +
        `Choose a priced model, add ${m} to the price table (TRACELANE_PRICE_TABLE), or set ALLOW_UNPRICED_MODELS=true on the ${stage} worker.`,
    );
  }
  const call = `its estimated cost $${estimate.toFixed(6)} (${b.inputTokens} input + up to ${b.maxOutputTokens} output tokens on ${m})`;
  if (max !== undefined) {
    const left = max - b.spentUsd;
    if (estimate > left) {
      throw new BudgetExceededError(
        `Stopped before ${stage}: ${call} exceeds the $${Math.max(0, left).toFixed(6)} left of maxCostUsd $${max}. Raise options.maxCostUsd or choose cheaper models.`,
      );
    }
  }
  if (daily !== undefined && estimate > daily.leftUsd) {
    throw new DailySpendCapError(
      `Stopped before ${stage}: ${call} exceeds the $${Math.max(0, daily.leftUsd).toFixed(6)} left today of the daily spend cap $${daily.capUsd} ` +
        `(DAILY_SPEND_CAP_USD, per API key, or client address without keys, per UTC day; it resets at 00:00 UTC). Try again after midnight UTC, choose cheaper models, or ask the operator to raise the cap.`,
    );
  }
}
