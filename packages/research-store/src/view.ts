import { addUsd } from "@tracelane/pricing";
import { RESEARCH_PIPELINE, type OutputKey, type Pipeline, type Stage } from "@tracelane/pipeline";
import {
  emptyStages,
  researchOptionsSchema,
  type ResearchError,
  type ResearchOptions,
  type ResearchStatus,
  type ResearchView,
  type StageRecord,
} from "./schemas.js";

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
  const status = hash.status as ResearchStatus;
  const outputs: Partial<Record<O, string>> = {};
  for (const s of pipeline.stages) {
    const out = byStage[s.stage];
    if (out !== undefined) outputs[s.output] = out;
  }

  let inputTokens = 0;
  let outputTokens = 0;
  let costUsd = 0;
  const unpricedModels: string[] = [];
  for (const stage of pipeline.names) {
    const s = stages[stage];
    inputTokens += s.usage?.inputTokens ?? 0;
    outputTokens += s.usage?.outputTokens ?? 0;
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
