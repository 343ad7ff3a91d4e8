import { addUsd, type PriceSource } from "@tracelane/pricing";
import type { RedisClient } from "@tracelane/runtime";
import { percentile, readStageSamples, traceKeys, type StageSample, type TraceKeys } from "@tracelane/trace-store";

/**
 * The cost forecast `POST /v1/research` answers with, from the trace-collector's per-(stage, model) history of
 * completed researches (trace-store forecast.ts). Each past research's stage tokens are priced with the api's price
 * table (at the prices in force now: what it would cost today) and the percentiles are taken over those per-research costs: pricing a percentile of tokens would pair a
 * p95 of input with a p95 of output that no research had, and would hide how a fan-out stage's call count varies.
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

export interface EstimateBasis {
  method: string;
  /** The most samples read per stage (TRACELANE_FORECAST_WINDOW). */
  window: number;
  /** Fewer samples than this for any stage: no estimate (FORECAST_MIN_SAMPLES). */
  minSamples: number;
  /** This question's estimated tokens (characters / 4): the first stage's input. */
  queryTokens: number;
  stages: Record<string, EstimateStage>;
}

export type Estimate =
  | { available: true; costUsd: number; p50: number; p95: number; basis: EstimateBasis }
  | { available: false; reason: string; basis: EstimateBasis };

const METHOD =
  "Per stage, the newest completed researches that ran it on the model this request will use: each research's tokens " +
  "on that stage (every call, a fan-out stage's claims summed) priced with the api's price table at today's prices, then the p50 and p95 " +
  "of those per-research costs (nearest rank). The first stage's input is each past research's input minus its " +
  "question's estimated tokens plus this question's (tokens = characters / 4, an estimate, not a tokenizer count); " +
  "its output comes from history. p50 and p95 (and costUsd = p50) are sums over the stages: the p95 sum assumes no " +
  "stage offsets another, so it errs high.";

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
    const costs: number[] = [];
    for (const s of samples) {
      // The first stage's prompt is fixed instructions plus the question: keep the past research's instructions, swap in this question.
      const inputTokens =
        first && s.queryChars > 0 ? Math.max(0, s.inputTokens - estimateTokens(s.queryChars)) + queryTokens : s.inputTokens;
      const cost = input.prices.cost(model, {
        inputTokens,
        outputTokens: s.outputTokens,
        cachedInputTokens: Math.min(s.cachedInputTokens, inputTokens),
      });
      if (cost.costUsd === null) break;
      costs.push(cost.costUsd);
    }
    if (costs.length < samples.length) {
      problems.push(`the ${stage} stage's model ${model} has no price in the api's price table (TRACELANE_PRICE_TABLE)`);
      continue;
    }
    row.p50 = percentile(costs, 50);
    row.p95 = percentile(costs, 95);
    p50 = addUsd(p50, row.p50!);
    p95 = addUsd(p95, row.p95!);
  }
  const basis: EstimateBasis = { method: METHOD, window: input.window, minSamples: input.minSamples, queryTokens, stages };
  if (problems.length > 0) {
    return {
      available: false,
      reason: `No estimate rather than a guess: ${problems.join("; ")}. The trace-collector adds every completed research to the history.`,
      basis,
    };
  }
  return { available: true, costUsd: p50, p50, p95, basis };
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
