import { addCostUsd, addUsd, fromNanoUsd } from "@tracelane/pricing";
import { RESEARCH_PIPELINE, type OutputKey, type Pipeline, type Stage } from "@tracelane/pipeline";
import {
  addUsage,
  emptyStages,
  researchOptionsSchema,
  type ResearchError,
  type ResearchOptions,
  type ResearchStatus,
  type ClaimRecord,
  type RepricedCost,
  type RepricedCosts,
  type ResearchView,
  type StageRecord,
  type TokenUsage,
} from "./schemas.js";
import { claimField, CLAIMS_FIELD, wastedFields } from "./keys.js";

const shipped = <S extends string, O extends string>() => RESEARCH_PIPELINE as unknown as Pipeline<S, O>;

// zod compiles a schema on first use; keep one per pipeline, not one per view.
const optionSchemas = new WeakMap<Pipeline<string, string>, ReturnType<typeof researchOptionsSchema>>();
function optionsSchemaOf(pipeline: Pipeline<string, string>) {
  let schema = optionSchemas.get(pipeline);
  if (!schema) optionSchemas.set(pipeline, (schema = researchOptionsSchema(pipeline)));
  return schema;
}

/** The stage outputs stored in a research hash (`output.<stage>`), by stage. */
export function stageOutputs<S extends string = Stage>(
  hash: Record<string, string>,
  pipeline: Pipeline<S, string> = shipped<S, string>(),
): Partial<Record<S, string>> {
  const outputs: Partial<Record<S, string>> = {};
  for (const stage of pipeline.names) {
    const out = hash[`output.${stage}`];
    if (out !== undefined) outputs[stage] = out;
  }
  return outputs;
}

/** Build the api's view of a research from its Redis hash: one row and one output per stage of the pipeline. */
export function toView<S extends string = Stage, O extends string = OutputKey>(
  hash: Record<string, string>,
  byStage: Partial<Record<S, string>> = stageOutputs<S>(hash, shipped<S, O>()),
  pipeline: Pipeline<S, O> = shipped<S, O>(),
): ResearchView<S, O> {
  const stages = emptyStages(pipeline);
  for (const stage of pipeline.names) {
    const raw = hash[`stage.${stage}`];
    if (raw) stages[stage] = JSON.parse(raw) as StageRecord;
  }
  for (const stage of pipeline.names) {
    const wasted = wastedOf(hash, stage);
    if (wasted) stages[stage] = withWasted(stages[stage], wasted);
  }
  const fanOut = pipeline.fanOutStage;
  if (fanOut) {
    const claims = claimsOf(hash, fanOut);
    if (claims.length > 0) stages[fanOut] = withClaims(stages[fanOut], claims);
  }
  if (hash.repriced) {
    const repriced = JSON.parse(hash.repriced) as RepricedCosts;
    for (const stage of pipeline.names) {
      const cost = repriced.stages[stage];
      if (cost) stages[stage] = withCost(stages[stage], cost);
    }
    const claims = fanOut ? stages[fanOut].claims : undefined;
    if (fanOut && claims && repriced.claims) {
      stages[fanOut] = {
        ...stages[fanOut],
        claims: claims.map((c) => (repriced.claims![c.index] ? withCost(c, repriced.claims![c.index]!) : c)),
      };
    }
  }
  const status = hash.status as ResearchStatus;
  const outputs: Partial<Record<O, string>> = {};
  for (const s of pipeline.stages) {
    const out = byStage[s.stage];
    if (out !== undefined) outputs[s.output] = out;
  }

  let inputTokens = 0;
  let outputTokens = 0;
  let costUsd = 0;
  let retryCostUsd = 0;
  const unpricedModels: string[] = [];
  for (const stage of pipeline.names) {
    const s = stages[stage];
    inputTokens += s.usage?.inputTokens ?? 0;
    outputTokens += s.usage?.outputTokens ?? 0;
    retryCostUsd = addUsd(retryCostUsd, s.retryCostUsd ?? 0);
    if (s.costUsd === null && s.model) unpricedModels.push(s.model);
    else costUsd = addUsd(costUsd, s.costUsd ?? 0); // nano-dollars: the total is exactly the sum of the stages
  }
  const createdAt = hash.createdAt ?? new Date(0).toISOString();
  const finishedAt = hash.finishedAt;
  const end = finishedAt ? Date.parse(finishedAt) : Date.now();

  const view: ResearchView<S, O> = {
    id: hash.id ?? "",
    status,
    stage: (hash.stage || null) as S | null,
    query: hash.query ?? "",
    options: optionsSchemaOf(pipeline).parse(JSON.parse(hash.options ?? "{}")) as ResearchOptions<S>,
    createdAt,
    updatedAt: hash.updatedAt ?? createdAt,
    ...(finishedAt ? { finishedAt } : {}),
    traceId: hash.traceId || null,
    ...(hash.owner ? { owner: hash.owner } : {}),
    stages,
    totals: {
      inputTokens,
      outputTokens,
      costUsd,
      retryCostUsd,
      unpricedModels,
      latencyMs: Math.max(0, end - Date.parse(createdAt)),
    },
  };
  if (status === "completed") {
    view.result = Object.fromEntries(pipeline.stages.map((s) => [s.output, outputs[s.output] ?? ""])) as Record<O, string>;
  } else if (Object.keys(outputs).length > 0) {
    view.partialResult = outputs;
  }
  if (hash.error) view.error = JSON.parse(hash.error) as ResearchError<S>;
  return view;
}

/** The claim texts the claim source stage made (`claims`), empty when none. */
export function claimTexts(hash: Record<string, string>): string[] {
  const raw = hash[CLAIMS_FIELD];
  if (!raw) return [];
  const parsed = JSON.parse(raw) as unknown;
  return Array.isArray(parsed) ? parsed.filter((c): c is string => typeof c === "string") : [];
}

/** One row per claim made: its check's record, or `queued` when its job has not started. */
export function claimsOf(hash: Record<string, string>, stage: string): ClaimRecord[] {
  return claimTexts(hash).map((claim, index) => {
    const raw = hash[claimField(stage, index)];
    return raw ? (JSON.parse(raw) as ClaimRecord) : { index, claim, status: "queued", attempts: 0 };
  });
}

/**
 * A fan-out stage's row with its claims: its usage, cost and retry cost are its own calls' (none, usually)
 * plus every claim's, so the research's totals count each claim's calls and retries exactly once.
 */
function withClaims(rec: StageRecord, claims: ClaimRecord[]): StageRecord {
  let usage = addUsage(rec.usage, undefined);
  let costUsd: number | null = rec.costUsd ?? 0;
  let retryCostUsd = rec.retryCostUsd ?? 0;
  for (const c of claims) {
    usage = addUsage(usage, c.usage);
    retryCostUsd = addUsd(retryCostUsd, c.retryCostUsd ?? 0);
    costUsd = addCostUsd(costUsd, c.costUsd);
  }
  const model = rec.model ?? claims.find((c) => c.model)?.model;
  return {
    ...rec,
    ...(model ? { model } : {}),
    usage,
    costUsd,
    ...(retryCostUsd > 0 ? { retryCostUsd } : {}),
    claims,
  };
}

/** A stage or claim row with its re-priced cost in place of what it was charged (the research was re-priced). */
function withCost<R extends { costUsd?: number | null; retryCostUsd?: number }>(row: R, cost: RepricedCost): R {
  const { retryCostUsd: _charged, ...rest } = row;
  return { ...rest, costUsd: cost.costUsd, ...(cost.retryCostUsd > 0 ? { retryCostUsd: cost.retryCostUsd } : {}) } as R;
}

/** What attempts of `stage` paid for and threw away (wastedFields), or undefined when nothing. */
function wastedOf(hash: Record<string, string>, stage: string): { nanoUsd: number; usage: TokenUsage } | undefined {
  const f = wastedFields(stage);
  const n = (k: string) => Number(hash[k] ?? 0) || 0;
  if (hash[f.nanoUsd] === undefined && hash[f.inputTokens] === undefined) return undefined;
  const cached = n(f.cachedInputTokens);
  return {
    nanoUsd: n(f.nanoUsd),
    usage: { inputTokens: n(f.inputTokens), outputTokens: n(f.outputTokens), ...(cached > 0 ? { cachedInputTokens: cached } : {}) },
  };
}

/** A stage row with the spend of its thrown-away attempts: in its usage and cost, and apart as retry cost. */
function withWasted(rec: StageRecord, wasted: { nanoUsd: number; usage: TokenUsage }): StageRecord {
  const usd = fromNanoUsd(wasted.nanoUsd);
  return {
    ...rec,
    usage: addUsage(rec.usage, wasted.usage),
    costUsd: addCostUsd(rec.costUsd, usd),
    retryCostUsd: addUsd(rec.retryCostUsd ?? 0, usd),
  };
}
