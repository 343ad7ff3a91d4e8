import { z } from "zod";
import { STAGES, type Stage } from "@tracelane/queue-contract";

export const RESEARCH_STATUSES = ["queued", "running", "completed", "failed", "cancelled"] as const;
export type ResearchStatus = (typeof RESEARCH_STATUSES)[number];
export const FINAL_STATUSES: readonly ResearchStatus[] = ["completed", "failed", "cancelled"];
export const isFinal = (s: ResearchStatus) => FINAL_STATUSES.includes(s);

export const STAGE_STATUSES = ["pending", "queued", "running", "completed", "failed", "skipped"] as const;
export type StageStatus = (typeof STAGE_STATUSES)[number];

const ModelName = z
  .string()
  .min(1, "model name must not be empty")
  .max(200, "model name is longer than 200 characters")
  .regex(/^[\w.:/@+-]+$/, "model name may only contain letters, digits and . _ : / @ + -");

/** What a caller may set per research request (validated at the api, re-validated by workers). */
export const ResearchOptionsSchema = z
  .object({
    models: z
      .object({ analysis: ModelName, factcheck: ModelName, synthesis: ModelName })
      .partial()
      .strict()
      .optional(),
    maxCostUsd: z.number().positive("maxCostUsd must be greater than 0").max(10_000).optional(),
  })
  .strict();
export type ResearchOptions = z.infer<typeof ResearchOptionsSchema>;

export interface TokenUsageView {
  inputTokens: number;
  outputTokens: number;
}

/** Per-stage facts, stored as JSON under `stage.<name>` (the output text is stored apart). */
export interface StageRecord {
  status: StageStatus;
  model?: string;
  startedAt?: string;
  finishedAt?: string;
  latencyMs?: number;
  queueWaitMs?: number;
  usage?: TokenUsageView;
  /** null when the model is not in the price table (unpriced), never a silent 0. */
  costUsd?: number | null;
  attempts: number;
  error?: { type: string; message: string };
}

export interface ResearchError {
  stage: Stage | null;
  type: string;
  message: string;
}

export interface ResearchView {
  id: string;
  status: ResearchStatus;
  stage: Stage | null;
  query: string;
  options: ResearchOptions;
  createdAt: string;
  updatedAt: string;
  finishedAt?: string;
  traceId: string | null;
  stages: Record<Stage, StageRecord>;
  result?: { analysis: string; factCheck: string; finalReport: string };
  /** Outputs of the stages that finished, when the research did not complete. */
  partialResult?: Partial<Record<"analysis" | "factCheck" | "finalReport", string>>;
  totals: {
    inputTokens: number;
    outputTokens: number;
    /** Sum over priced stages; see `unpricedModels`. */
    costUsd: number;
    unpricedModels: string[];
    latencyMs: number;
  };
  error?: ResearchError;
}

export type ResearchEventType =
  | "research.queued"
  | "stage.started"
  | "stage.completed"
  | "stage.retrying"
  | "research.completed"
  | "research.failed"
  | "research.cancelled";

export interface ResearchEvent {
  /** Redis stream id; usable as SSE `id` / `Last-Event-ID`. */
  id: string;
  type: ResearchEventType;
  researchId: string;
  status: ResearchStatus;
  stage: Stage | null;
  at: string;
  data?: Record<string, unknown>;
}

export const emptyStages = (): Record<Stage, StageRecord> =>
  Object.fromEntries(STAGES.map((s) => [s, { status: "pending", attempts: 0 } satisfies StageRecord])) as Record<
    Stage,
    StageRecord
  >;
