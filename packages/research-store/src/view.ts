import { STAGES, type Stage } from "@tracelane/queue-contract";
import {
  emptyStages,
  ResearchOptionsSchema,
  type ResearchError,
  type ResearchStatus,
  type ResearchView,
  type StageRecord,
} from "./schemas.js";

const OUTPUT_NAMES = { analysis: "analysis", factcheck: "factCheck", synthesis: "finalReport" } as const;

/** The stage outputs stored in a research hash, by stage. */
export function stageOutputs(hash: Record<string, string>): Partial<Record<Stage, string>> {
  const outputs: Partial<Record<Stage, string>> = {};
  for (const stage of STAGES) {
    const out = hash[`output.${stage}`];
    if (out !== undefined) outputs[stage] = out;
  }
  return outputs;
}

/** Build the api's view of a research from its Redis hash. */
export function toView(hash: Record<string, string>, byStage = stageOutputs(hash)): ResearchView {
  const stages = emptyStages();
  for (const stage of STAGES) {
    const raw = hash[`stage.${stage}`];
    if (raw) stages[stage] = JSON.parse(raw) as StageRecord;
  }
  const status = hash.status as ResearchStatus;
  const outputs: Partial<Record<"analysis" | "factCheck" | "finalReport", string>> = {};
  for (const stage of STAGES) {
    const out = byStage[stage];
    if (out !== undefined) outputs[OUTPUT_NAMES[stage]] = out;
  }

  let inputTokens = 0;
  let outputTokens = 0;
  let costUsd = 0;
  const unpricedModels: string[] = [];
  for (const stage of STAGES) {
    const s = stages[stage];
    inputTokens += s.usage?.inputTokens ?? 0;
    outputTokens += s.usage?.outputTokens ?? 0;
    if (s.costUsd === null && s.model) unpricedModels.push(s.model);
    else costUsd += s.costUsd ?? 0;
  }
  const createdAt = hash.createdAt ?? new Date(0).toISOString();
  const finishedAt = hash.finishedAt;
  const end = finishedAt ? Date.parse(finishedAt) : Date.now();

  const view: ResearchView = {
    id: hash.id ?? "",
    status,
    stage: (hash.stage || null) as Stage | null,
    query: hash.query ?? "",
    options: ResearchOptionsSchema.parse(JSON.parse(hash.options ?? "{}")),
    createdAt,
    updatedAt: hash.updatedAt ?? createdAt,
    ...(finishedAt ? { finishedAt } : {}),
    traceId: hash.traceId || null,
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
    view.result = {
      analysis: outputs.analysis ?? "",
      factCheck: outputs.factCheck ?? "",
      finalReport: outputs.finalReport ?? "",
    };
  } else if (Object.keys(outputs).length > 0) {
    view.partialResult = outputs;
  }
  if (hash.error) view.error = JSON.parse(hash.error) as ResearchError;
  return view;
}
