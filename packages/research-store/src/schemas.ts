import { z } from "zod";
import { RESEARCH_PIPELINE, type OutputKey, type Pipeline, type Stage } from "@tracelane/pipeline";

export const RESEARCH_STATUSES = ["queued", "running", "completed", "failed", "cancelled"] as const;
export type ResearchStatus = (typeof RESEARCH_STATUSES)[number];
export const FINAL_STATUSES: readonly ResearchStatus[] = ["completed", "failed", "cancelled"];
export const isFinal = (s: ResearchStatus) => FINAL_STATUSES.includes(s);

/** "cancelled": the research was cancelled while this stage ran (its call's cost still counts); "skipped": it never ran. */
export const STAGE_STATUSES = ["pending", "queued", "running", "completed", "failed", "cancelled", "skipped"] as const;
export type StageStatus = (typeof STAGE_STATUSES)[number];

const ModelName = z
  .string()
  .min(1, "model name must not be empty")
  .max(200, "model name is longer than 200 characters")
  .regex(/^[\w.:/@+-]+$/, "model name may only contain letters, digits and . _ : / @ + -");

/**
 * What a caller may set per research request (validated at the api, re-validated by workers):
 * a model per stage of `pipeline`, and a cost cap.
 */
export function researchOptionsSchema<S extends string = Stage>(
  pipeline: Pipeline<S, string> = RESEARCH_PIPELINE as unknown as Pipeline<S, string>,
) {
  const models = Object.fromEntries(pipeline.names.map((s) => [s, ModelName])) as Record<S, typeof ModelName>;
  return z
    .object({
      models: z.object(models).partial().strict().optional(),
      maxCostUsd: z.number().positive("maxCostUsd must be greater than 0").max(10_000).optional(),
      /** Run even when maxCostUsd is below the submit-time estimate's p50 (else 422 estimate_over_budget). */
      allowOverBudgetEstimate: z
        .boolean({ error: (iss) => `allowOverBudgetEstimate must be true or false (got ${JSON.stringify(iss.input) ?? "nothing"})` })
        .optional(),
    })
    .strict();
}
export const ResearchOptionsSchema = researchOptionsSchema();
export interface ResearchOptions<S extends string = Stage> {
  models?: Partial<Record<S, string>>;
  maxCostUsd?: number;
  allowOverBudgetEstimate?: boolean;
}

/** A call's tokens; `cachedInputTokens` (of inputTokens, priced at the cached rate) only when the provider reported some. */
export interface TokenUsage {
  inputTokens: number;
  outputTokens: number;
  cachedInputTokens?: number;
}

/** The sum of two usages (either may be absent); cachedInputTokens stays absent while it is 0. */
export function addUsage(a: TokenUsage | undefined, b: TokenUsage | undefined): TokenUsage {
  const cached = (a?.cachedInputTokens ?? 0) + (b?.cachedInputTokens ?? 0);
  return {
    inputTokens: (a?.inputTokens ?? 0) + (b?.inputTokens ?? 0),
    outputTokens: (a?.outputTokens ?? 0) + (b?.outputTokens ?? 0),
    ...(cached > 0 ? { cachedInputTokens: cached } : {}),
  };
}

/** Per-stage facts, stored as JSON under `stage.<name>` (the output text is stored apart). */
export interface StageRecord {
  status: StageStatus;
  model?: string;
  startedAt?: string;
  finishedAt?: string;
  latencyMs?: number;
  queueWaitMs?: number;
  usage?: TokenUsage;
  /** null when the model is not in the price table (unpriced), never a silent 0. */
  costUsd?: number | null;
  attempts: number;
  error?: { type: string; message: string };
  /**
   * Of `costUsd`, what attempts whose answer was thrown away cost (an answer that did not match its schema,
   * a claim attempt that failed after paying for some turns).
   */
  retryCostUsd?: number;
  /** A fan-out stage's claims, one row each in the order the claims were made; its usage and cost are their sum. */
  claims?: ClaimRecord[];
}

export const CLAIM_VERDICTS = ["supported", "refuted", "unverifiable"] as const;
export type ClaimVerdict = (typeof CLAIM_VERDICTS)[number];

/** One claim's check, as its claim job records it (`claim.<stage>.<index>` in the research hash). */
export interface ClaimRecord {
  index: number;
  claim: string;
  status: "queued" | "running" | "checked" | "failed";
  /** Set once checked; `unverifiable` (with `error`) also when every attempt failed. */
  verdict?: ClaimVerdict;
  /** The evidence the verdict rests on: the sources the model cited from its searches. */
  evidence?: Array<{ url: string; title?: string }>;
  rationale?: string;
  model?: string;
  usage?: TokenUsage;
  /** Every call of every attempt; null when a model is unpriced. */
  costUsd?: number | null;
  /** Of costUsd, what failed attempts cost. */
  retryCostUsd?: number;
  latencyMs?: number;
  /** Model calls and tool runs of the attempt that answered. */
  modelCalls?: number;
  toolCalls?: number;
  attempts: number;
  startedAt?: string;
  finishedAt?: string;
  error?: { type: string; message: string };
  /** The claim job's CONSUMER span, for the fan-in's span links. */
  span?: { traceId: string; spanId: string };
}

export interface ResearchError<S extends string = Stage> {
  stage: S | null;
  type: string;
  message: string;
}

/** The api's view of a research; `S`/`O` are the pipeline's stage and output names. */
export interface ResearchView<S extends string = Stage, O extends string = OutputKey> {
  id: string;
  status: ResearchStatus;
  stage: S | null;
  query: string;
  options: ResearchOptions<S>;
  createdAt: string;
  updatedAt: string;
  finishedAt?: string;
  traceId: string | null;
  /** The id of the API key that created it (`key_…`, never the key); absent when created without keys. */
  owner?: string;
  /** One row per stage, in pipeline order. */
  stages: Record<S, StageRecord>;
  /** Every stage's output by its output name, once the research completed. */
  result?: Record<O, string>;
  /** Outputs of the stages that finished, when the research did not complete. */
  partialResult?: Partial<Record<O, string>>;
  totals: {
    inputTokens: number;
    outputTokens: number;
    /** Sum over priced stages; see `unpricedModels`. */
    costUsd: number;
    /** Of costUsd, what attempts whose answer was thrown away cost (retries that paid twice). */
    retryCostUsd: number;
    unpricedModels: string[];
    latencyMs: number;
  };
  error?: ResearchError<S>;
}

/** A re-priced cost: USD (null when some call of it is unpriced) and, of it, what failed attempts cost. */
export interface RepricedCost {
  costUsd: number | null;
  retryCostUsd: number;
}

/**
 * A research's costs re-priced from its trace (POST /v1/admin/reprice): per stage (its claims' calls included) and
 * per claim of the fan-out stage, keyed by claim index. Stored beside the record's own figures (the research hash
 * field `repriced`), which keep what the calls were charged when made; the view shows these instead.
 */
export interface RepricedCosts {
  /** The price table used (its content hash). */
  priceVersion: string;
  stages: Record<string, RepricedCost>;
  claims?: Record<string, RepricedCost>;
}

export type ResearchEventType<S extends string = Stage> =
  | "research.queued"
  | "stage.started"
  | "stage.completed"
  | "stage.retrying"
  | "claim.started"
  | "claim.completed"
  | "claim.retrying"
  | "research.completed"
  | "research.failed"
  | "research.cancelled"
  /** A piece of a streamed stage's answer (synthesis.delta): `data.text`, `data.attempt`. */
  | `${S}.delta`;

export interface ResearchEvent<S extends string = Stage> {
  /** Redis stream id; usable as SSE `id` / `Last-Event-ID`. */
  id: string;
  type: ResearchEventType<S>;
  researchId: string;
  status: ResearchStatus;
  stage: S | null;
  at: string;
  data?: Record<string, unknown>;
}

/** A pending row for every stage of the pipeline, in its order. */
export const emptyStages = <S extends string = Stage>(
  pipeline: Pipeline<S, string> = RESEARCH_PIPELINE as unknown as Pipeline<S, string>,
): Record<S, StageRecord> =>
  Object.fromEntries(pipeline.names.map((s) => [s, { status: "pending", attempts: 0 } satisfies StageRecord])) as Record<S, StageRecord>;
