import { addUsd, type PriceSource } from "@tracelane/pricing";
import type { RedisClient } from "@tracelane/runtime";
import { percentile, readStageSamples, traceKeys, type StageSample, type TraceKeys } from "@tracelane/trace-store";

/**
 * The cost forecast `POST /v1/research` answers with, from the trace-collector's per-(stage, model) history of
 * completed researches (trace-store forecast.ts). Each past research's stage tokens are priced with the api's price
 * table (at the prices in force now: what it would cost today) and the percentiles are taken over those per-research costs: pricing a percentile of tokens would pair a
 * p95 of input with a p95 of output that no research had, and would hide how a fan-out stage's call count varies.
 * For the same reason the stages are joined per research (on the trace id each sample carries) when enough researches
 * are in every stage's history: the p50 of the totals, not a sum of per-stage p50s that no research had.
 */

/** Tokens of a text as the forecast counts them: characters / 4, rounded up (a tokenizer-free estimate). */
export const estimateTokens = (chars: number): number => Math.ceil(chars / 4);

export interface EstimateStage {
  model: string;
  /** Completed researches this stage's figures come from (the newest, up to `window`). */
  samples: number;
  /** USD per research; null when there are too few samples or the model is unpriced. */
  p50: number | null;
  p95: number | null;
  /** "query+history": input from this question's length, output from history (the first stage); else "history". */
  input: "query+history" | "history";
}

/**
 * How the stages were put together. "per_research": the researches found in every stage's history on the model this
 * request will run (joined on their trace id) are each priced whole, and the percentiles are of those totals.
 * "per_stage": too few such researches (fewer than minSamples), so the percentiles are taken per stage and summed.
 */
export type EstimatePairing = "per_research" | "per_stage";

export interface EstimateBasis {
  method: string;
  pairing: EstimatePairing;
  /** Past researches found in every stage's history (on this request's models): the per_research figures' count. */
  researches: number;
  /** The most samples read per stage (TRACELANE_FORECAST_WINDOW). */
  window: number;
  /** Fewer samples than this for any stage: no estimate (FORECAST_MIN_SAMPLES); fewer joined researches: per_stage. */
  minSamples: number;
  /** This question's estimated tokens (characters / 4): the first stage's input. */
  queryTokens: number;
  stages: Record<string, EstimateStage>;
}

export type Estimate =
  | { available: true; costUsd: number; p50: number; p95: number; basis: EstimateBasis }
  | { available: false; reason: string; basis: EstimateBasis };

const PRICING =
  "each research's tokens on a stage (every call, a fan-out stage's claims summed) priced with the api's price table " +
  "at today's prices. The first stage's input is each past research's input minus its question's estimated tokens " +
  "plus this question's (tokens = characters / 4, an estimate, not a tokenizer count); its output comes from history.";
const METHOD: Record<EstimatePairing, string> = {
  per_research:
    "The newest completed researches found in every stage's history on the model this request will use (joined on " +
    `their trace id), each priced whole: ${PRICING} p50 and p95 (nearest rank, costUsd = p50) are of those ` +
    "per-research totals. The per-stage rows are each stage's own percentiles, for reading only.",
  per_stage:
    "Fewer than minSamples past researches are found in every stage's history on this request's models, so per stage, " +
    `the newest completed researches that ran it on that model: ${PRICING} p50 and p95 (nearest rank) of those ` +
    "per-research stage costs, summed over the stages (costUsd = p50): the p95 sum assumes no stage offsets another, " +
    "so it errs high, and a sum of medians is not the median of the totals.",
};

export interface EstimateInput {
  /** Every stage in pipeline order, with the model it will run and that (stage, model)'s samples, newest first. */
  stages: readonly { stage: string; model: string; samples: readonly StageSample[] }[];
  firstStage: string;
  /** Characters of this research's question. */
  queryChars: number;
  prices: Pick<PriceSource, "cost">;
  minSamples: number;
  window: number;
}

/** The estimate from the samples (pure: the unit under test). */
export function estimateResearch(input: EstimateInput): Estimate {
  const queryTokens = estimateTokens(input.queryChars);
  const stages: Record<string, EstimateStage> = {};
  const problems: string[] = [];
  /** Per stage, each windowed sample's cost (null: the model is unpriced). */
  const costsOf = new Map<string, (number | null)[]>();
  let p50 = 0;
  let p95 = 0;
  for (const { stage, model, samples: all } of input.stages) {
    const samples = all.slice(0, input.window);
    const first = stage === input.firstStage;
    const row: EstimateStage = { model, samples: samples.length, p50: null, p95: null, input: first ? "query+history" : "history" };
    stages[stage] = row;
    if (samples.length < input.minSamples) {
      problems.push(
        `the ${stage} stage has ${samples.length} completed research${samples.length === 1 ? "" : "es"} on ${model} (at least ${input.minSamples} needed)`,
      );
      continue;
    }
    const costs = samples.map((s) => {
      // The first stage's prompt is fixed instructions plus the question: keep the past research's instructions, swap in this question.
      const inputTokens =
        first && s.queryChars > 0 ? Math.max(0, s.inputTokens - estimateTokens(s.queryChars)) + queryTokens : s.inputTokens;
      return input.prices.cost(model, {
        inputTokens,
        outputTokens: s.outputTokens,
        cachedInputTokens: Math.min(s.cachedInputTokens, inputTokens),
      }).costUsd;
    });
    if (costs.some((c) => c === null)) {
      problems.push(`the ${stage} stage's model ${model} has no price in the api's price table (TRACELANE_PRICE_TABLE)`);
      continue;
    }
    costsOf.set(stage, costs);
    row.p50 = percentile(costs as number[], 50);
    row.p95 = percentile(costs as number[], 95);
    p50 = addUsd(p50, row.p50!);
    p95 = addUsd(p95, row.p95!);
  }

  const totals = researchTotals(input, costsOf);
  const pairing: EstimatePairing = totals.length >= input.minSamples ? "per_research" : "per_stage";
  const basis: EstimateBasis = {
    method: METHOD[pairing],
    pairing,
    researches: totals.length,
    window: input.window,
    minSamples: input.minSamples,
    queryTokens,
    stages,
  };
  if (problems.length > 0) {
    return {
      available: false,
      reason: `No estimate rather than a guess: ${problems.join("; ")}. The trace-collector adds every completed research to the history.`,
      basis,
    };
  }
  if (pairing === "per_research") {
    p50 = percentile(totals, 50)!;
    p95 = percentile(totals, 95)!;
  }
  return { available: true, costUsd: p50, p50, p95, basis };
}

/**
 * The whole cost of each past research found in every stage's windowed samples (joined on the trace id; a sample
 * without one, recorded before ids were kept, joins nothing), newest first. Empty when a stage has no priced samples.
 */
function researchTotals(input: EstimateInput, costsOf: ReadonlyMap<string, readonly (number | null)[]>): number[] {
  if (input.stages.length === 0 || input.stages.some(({ stage }) => !costsOf.has(stage))) return [];
  const byStage = input.stages.map(({ stage, samples }) => {
    const costs = costsOf.get(stage)!;
    const byTrace = new Map<string, number>();
    samples.slice(0, input.window).forEach((s, i) => {
      // A trace listed twice on one stage (not written so, but possible by hand) counts once: its newest.
      if (s.traceId !== undefined && !byTrace.has(s.traceId)) byTrace.set(s.traceId, costs[i]!);
    });
    return byTrace;
  });
  const totals: number[] = [];
  for (const [traceId, firstCost] of byStage[0]!) {
    let total = firstCost;
    let joined = true;
    for (const other of byStage.slice(1)) {
      const cost = other.get(traceId);
      if (cost === undefined) {
        joined = false;
        break;
      }
      total = addUsd(total, cost);
    }
    if (joined) totals.push(total);
  }
  return totals;
}

export interface ResearchForecasterOptions {
  redis: RedisClient;
  /** TRACELANE_TRACE_PREFIX: where the trace-collector keeps the history. */
  tracePrefix?: string;
  prices: Pick<PriceSource, "cost">;
  /** Stage names in pipeline order. */
  stages: readonly string[];
  /** The model a stage runs unless the request names one (<STAGE>_MODEL). */
  configuredModel: (stage: string) => string;
  minSamples: number;
  window: number;
}

/** Reads the history and estimates one request's cost. */
export class ResearchForecaster {
  private readonly keys: TraceKeys;

  constructor(private readonly opts: ResearchForecasterOptions) {
    this.keys = traceKeys(opts.tracePrefix);
  }

  /** One round trip: one LRANGE per stage (each list its own slot). */
  async estimate(query: string, models: Readonly<Partial<Record<string, string>>> | undefined): Promise<Estimate> {
    const pairs = this.opts.stages.map((stage) => ({ stage, model: models?.[stage] ?? this.opts.configuredModel(stage) }));
    const samples = await readStageSamples(this.opts.redis, this.keys, pairs, this.opts.window);
    return estimateResearch({
      stages: pairs.map((p, i) => ({ ...p, samples: samples[i]! })),
      firstStage: this.opts.stages[0]!,
      queryChars: query.length,
      prices: this.opts.prices,
      minSamples: this.opts.minSamples,
      window: this.opts.window,
    });
  }
}
