import type { ModelPolicy } from "@tracelane/pricing";
import type { ResearchOptions, ResearchStore } from "@tracelane/research-store";
import type { Estimate } from "./forecast.js";
import { HttpError, RetryLaterError } from "./http/errors.js";

/**
 * A request's options as the research keeps them: every model it names must be allowed for its
 * stage (400 model_not_allowed, naming the stage and the allowed models), and without a maxCostUsd
 * it gets DEFAULT_MAX_COST_USD (when set), so the research's status shows the budget it runs under.
 */
export function researchOptions(
  requested: ResearchOptions<string> | undefined,
  policy: { modelPolicy?: ModelPolicy | undefined; defaultMaxCostUsd: number },
): ResearchOptions<string> {
  const options: ResearchOptions<string> = { ...requested };
  for (const [stage, model] of Object.entries(options.models ?? {})) {
    if (model === undefined) continue;
    const refusal = policy.modelPolicy?.refusal(stage, model);
    if (refusal) {
      throw new HttpError(400, "model_not_allowed", refusal.message, { stage, model, allowed: refusal.allowed });
    }
  }
  if (options.maxCostUsd === undefined && policy.defaultMaxCostUsd > 0) options.maxCostUsd = policy.defaultMaxCostUsd;
  return options;
}

/** Whole seconds from `now` to the next 00:00 UTC (at least 1), when a day's spend starts again from zero. */
function secondsUntilUtcMidnight(now: Date = new Date()): number {
  const midnight = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate() + 1);
  return Math.max(1, Math.ceil((midnight - now.getTime()) / 1000));
}

/**
 * DAILY_SPEND_CAP_USD: for a spender (API key id, else client address) who has spent the cap today
 * (UTC), the 429 daily_spend_cap_reached (Retry-After until midnight UTC) to answer instead of creating
 * a research; undefined while some of the cap is left. 429 rather than 402: it is a quota that refills
 * on its own, and clients already honour Retry-After on a 429.
 */
export async function dailySpendRefusal(
  store: Pick<ResearchStore, "spentOn">,
  subject: string,
  capUsd: number,
): Promise<RetryLaterError | undefined> {
  if (capUsd <= 0) return undefined;
  const now = new Date();
  const spent = await store.spentOn(subject, now);
  if (spent < capUsd) return undefined;
  const retryAfter = secondsUntilUtcMidnight(now);
  return new RetryLaterError(
    429,
    "daily_spend_cap_reached",
    `The daily spend cap of $${capUsd} for this ${subject.startsWith("ip:") ? "client address" : "API key"} is used up ` +
      `($${spent} spent today, UTC). It resets at 00:00 UTC, in ${retryAfter} s; ask the operator to raise DAILY_SPEND_CAP_USD for more.`,
    retryAfter,
    { capUsd, spentUsd: spent, resetsAt: new Date(now.getTime() + retryAfter * 1000).toISOString().replace(/\.\d{3}Z$/, "Z") },
  );
}

/**
 * 422 estimate_over_budget when the research's budget (its maxCostUsd, or DEFAULT_MAX_COST_USD) is below the p50 of
 * its estimate: it would more likely than not stop at budget_exceeded halfway, paid for. Undefined without a budget,
 * without an estimate (too little history: nothing to hold against the budget), or with options.allowOverBudgetEstimate.
 */
export function estimateRefusal(estimate: Estimate, options: ResearchOptions<string>): HttpError | undefined {
  const budget = options.maxCostUsd;
  if (budget === undefined || !estimate.available || options.allowOverBudgetEstimate === true || budget >= estimate.p50) return undefined;
  return new HttpError(
    422,
    "estimate_over_budget",
    `maxCostUsd is $${budget}, below this research's estimated cost: p50 $${estimate.p50}, p95 $${estimate.p95} ` +
      `(from recent completed researches on the same models; see details.estimate.basis). Nothing was created. ` +
      `Raise options.maxCostUsd to at least $${estimate.p50} (the p95 for more headroom), or send options.allowOverBudgetEstimate: true ` +
      `to run anyway (it stops with budget_exceeded once the budget is spent).`,
    { maxCostUsd: budget, estimate },
  );
}
