import { z } from "zod";
import { RESEARCH_PIPELINE } from "@tracelane/pipeline";
import {
  CLAIM_VERDICTS,
  RESEARCH_STATUSES,
  ResearchOptionsSchema,
  STAGE_STATUSES,
  type ResearchEvent,
  type ResearchEventType,
  type ResearchSummary,
  type ResearchView,
} from "@tracelane/research-store";
import { AnomalyTypeSchema } from "@tracelane/trace-store";
import { apiSchemas } from "./registry.js";

const TokenUsageSchema = z
  .object({
    inputTokens: z.number().int(),
    outputTokens: z.number().int(),
    cachedInputTokens: z
      .number()
      .int()
      .optional()
      .meta({ description: "of inputTokens, read from the provider's prompt cache (priced at the cached rate)" }),
  })
  .meta({ description: "tokens of every call (and retry) counted here" });

/**
 * What the research routes answer, as zod schemas: the OpenAPI document is generated from them
 * and the api's tests validate real responses against that document. The assignments at the end
 * of the file stop the build when these schemas and the store's types drift apart.
 */

const Iso = z.string().meta({ description: "ISO 8601 time (UTC)", format: "date-time" });
const Usd = z.number().meta({ description: "USD, rounded to 1e-9 (totals are exact sums of their parts)" });
const Stage = z.enum(RESEARCH_PIPELINE.names);

const ClaimRecordSchema = z
  .object({
    index: z.number().int().meta({ description: "0-based, in the order the analysis made the claims" }),
    claim: z.string(),
    status: z.enum(["queued", "running", "checked", "failed"]).meta({ description: "failed: every attempt failed (verdict unverifiable)" }),
    verdict: z.enum(CLAIM_VERDICTS).optional(),
    evidence: z.array(z.object({ url: z.string(), title: z.string().optional() })).optional(),
    rationale: z.string().optional(),
    model: z.string().optional(),
    usage: TokenUsageSchema.optional(),
    costUsd: Usd.nullable().optional().meta({ description: "every call of every attempt; null when a model is unpriced" }),
    retryCostUsd: Usd.optional().meta({ description: "of costUsd, what failed attempts cost" }),
    latencyMs: z.number().optional(),
    modelCalls: z.number().int().optional(),
    toolCalls: z.number().int().optional(),
    attempts: z.number().int(),
    startedAt: Iso.optional(),
    finishedAt: Iso.optional(),
    error: z.object({ type: z.string(), message: z.string() }).optional(),
    span: z.object({ traceId: z.string(), spanId: z.string() }).optional().meta({ description: "the claim job's CONSUMER span" }),
  })
  .meta({ description: "One claim's check: verdict, evidence, model, usage, cost, latency, attempts" });
apiSchemas.add(ClaimRecordSchema, { id: "ClaimRecord" });

const StageRecordSchema = z
  .object({
    status: z.enum(STAGE_STATUSES),
    model: z.string().optional(),
    startedAt: Iso.optional(),
    finishedAt: Iso.optional(),
    latencyMs: z.number().optional(),
    queueWaitMs: z.number().optional(),
    usage: TokenUsageSchema.optional(),
    costUsd: Usd.nullable().optional().meta({ description: "null when the model is not in the price table" }),
    attempts: z.number().int(),
    error: z.object({ type: z.string(), message: z.string() }).optional(),
    retryCostUsd: Usd.optional().meta({ description: "of costUsd, what answers thrown away cost (retries that paid twice)" }),
    claims: z
      .array(ClaimRecordSchema)
      .optional()
      .meta({ description: "a fan-out stage's claims (factcheck): its usage and cost are their sum" }),
  })
  .meta({ description: "One stage of a research: model, timing, usage, cost, attempts" });
apiSchemas.add(StageRecordSchema, { id: "StageRecord" });

const ResearchErrorSchema = z.object({ stage: Stage.nullable(), type: z.string(), message: z.string() });
apiSchemas.add(ResearchErrorSchema, { id: "ResearchError" });

/** links of every research answer: all relative to the api. */
export const ResearchLinksSchema = z.object({
  self: z.string(),
  events: z.string(),
  trace: z.string().optional().meta({ description: "the research's trace (GET /v1/traces/{traceId}); absent without a trace" }),
  ui: z.string().optional().meta({ description: "the trace in the web console (/ui/traces/{traceId}); absent without a trace" }),
});
apiSchemas.add(ResearchLinksSchema, { id: "ResearchLinks" });

const summaryFields = {
  id: z.string(),
  status: z.enum(RESEARCH_STATUSES),
  stage: Stage.nullable().meta({ description: "the stage running or next; null once finished" }),
  query: z.string(),
  options: ResearchOptionsSchema,
  createdAt: Iso,
  updatedAt: Iso,
  finishedAt: Iso.optional(),
  traceId: z.string().nullable(),
  owner: z
    .string()
    .optional()
    .meta({ description: "id (key_…, not the key) of the API key that created it; absent when the api runs without keys" }),
  stages: z.object(
    Object.fromEntries(RESEARCH_PIPELINE.names.map((s) => [s, StageRecordSchema])) as Record<
      (typeof RESEARCH_PIPELINE.names)[number],
      typeof StageRecordSchema
    >,
  ),
  totals: z.object({
    inputTokens: z.number().int(),
    outputTokens: z.number().int(),
    costUsd: Usd,
    retryCostUsd: Usd.meta({ description: "of costUsd, what attempts whose answer was thrown away cost" }),
    unpricedModels: z.array(z.string()),
    latencyMs: z.number().meta({ description: "createdAt to finishedAt (or to now while unfinished)" }),
  }),
  error: ResearchErrorSchema.optional(),
};

/** GET/DELETE /v1/research/:id */
export const ResearchViewSchema = z.object({
  ...summaryFields,
  result: z.record(z.string(), z.string()).optional().meta({ description: "every stage's output by output name, once completed" }),
  partialResult: z.record(z.string(), z.string()).optional(),
  links: ResearchLinksSchema,
});
apiSchemas.add(ResearchViewSchema, { id: "Research" });

const usdOrNull = z.number().nullable();
const EstimateBasisSchema = z.object({
  method: z.string().meta({ description: "how the figures were made, in words" }),
  pairing: z.enum(["per_research", "per_stage"]).meta({
    description:
      "per_research: p50/p95 of the whole cost of each past research found in every stage's history on this request's models " +
      "(joined on its trace id); per_stage: fewer than minSamples such researches, so each stage's p50/p95 summed (the p95 errs high)",
  }),
  researches: z
    .number()
    .int()
    .meta({ description: "past researches found in every stage's history on this request's models (the per_research figures' count)" }),
  window: z.number().int().meta({ description: "most recent completed researches read per stage (TRACELANE_FORECAST_WINDOW)" }),
  minSamples: z.number().int().meta({
    description: "fewer samples than this for any stage: no estimate (FORECAST_MIN_SAMPLES); fewer joined researches: per_stage",
  }),
  queryTokens: z.number().int().meta({ description: "this question's estimated tokens (characters / 4): the first stage's input" }),
  stages: z.record(
    z.string(),
    z.object({
      model: z.string().meta({ description: "the model the stage will run: options.models, else <STAGE>_MODEL" }),
      samples: z.number().int().meta({ description: "completed researches on this stage and model the figures come from" }),
      p50: usdOrNull.meta({ description: "USD per research; null with too few samples or an unpriced model" }),
      p95: usdOrNull,
      input: z.enum(["query+history", "history"]),
    }),
  ),
});
/** The submit-time forecast (services/api/src/forecast.ts). */
export const EstimateSchema = z
  .union([
    z.object({
      available: z.literal(true),
      costUsd: z.number().meta({ description: "the expected cost: p50" }),
      p50: z
        .number()
        .meta({ description: "p50 cost per research, USD: of the research totals (per_research) or the stages' p50s summed (per_stage)" }),
      p95: z
        .number()
        .meta({ description: "p95 cost per research, USD: of the research totals, or the stages' p95s summed (per_stage, errs high)" }),
      basis: EstimateBasisSchema,
    }),
    z.object({
      available: z.literal(false),
      reason: z.string().meta({ description: "which stage lacks history (or a price): no estimate rather than a guess" }),
      basis: EstimateBasisSchema,
    }),
  ])
  .meta({ description: "what this research will likely cost, from the recent completed researches on the same stages and models" });
apiSchemas.add(EstimateSchema, { id: "CostEstimate" });

/** POST /v1/research (202, or 200 for an idempotent replay) */
export const ResearchCreatedSchema = z.object({
  id: z.string(),
  status: z.enum(RESEARCH_STATUSES),
  traceId: z.string().nullable(),
  links: ResearchLinksSchema,
  estimate: EstimateSchema.optional(),
});
apiSchemas.add(ResearchCreatedSchema, { id: "ResearchCreated" });

/** One row of GET /v1/research: the research without its outputs, with its trace's anomalies. */
export const ResearchListItemSchema = z.object({
  ...summaryFields,
  anomalyCount: z.number().int().meta({ description: "anomalies the trace-collector found in the research's trace so far" }),
  anomalyTypes: z.array(AnomalyTypeSchema),
  links: ResearchLinksSchema,
});
apiSchemas.add(ResearchListItemSchema, { id: "ResearchListItem" });

/** GET /v1/research */
export const ResearchListSchema = z.object({
  researches: z.array(ResearchListItemSchema).meta({ description: "newest first (createdAt)" }),
  nextCursor: z.string().nullable().meta({ description: "pass as cursor for the next page; null on the last page" }),
  links: z.object({ next: z.string().nullable() }),
});
apiSchemas.add(ResearchListSchema, { id: "ResearchList" });

const RESEARCH_EVENT_TYPES = [
  "research.queued",
  "stage.started",
  "stage.completed",
  "stage.retrying",
  "claim.started",
  "claim.completed",
  "claim.retrying",
  "research.completed",
  "research.failed",
  "research.cancelled",
  // A streamed stage's answer as it is written (synthesis.delta): data.text, data.attempt.
  ...RESEARCH_PIPELINE.names.map((s) => `${s}.delta` as const),
] as const satisfies readonly ResearchEventType[];

/** The `data:` of each server-sent event of GET /v1/research/:id/events (its `id:` is `id`, its `event:` is `type`). */
export const ResearchEventSchema = z.object({
  id: z.string().meta({ description: "Redis stream id; send it back as Last-Event-ID to resume" }),
  type: z.enum(RESEARCH_EVENT_TYPES),
  researchId: z.string(),
  status: z.enum(RESEARCH_STATUSES),
  stage: Stage.nullable(),
  at: Iso,
  data: z
    .record(z.string(), z.unknown())
    .optional()
    .meta({ description: "model, usage, costUsd, attempt, error... as the event has them" }),
});
apiSchemas.add(ResearchEventSchema, { id: "ResearchEvent" });

// Drift checks: the store's types must fit these schemas (a compile error names the field).
const _view: Omit<z.input<typeof ResearchViewSchema>, "links"> = {} as ResearchView;
const _event: z.input<typeof ResearchEventSchema> = {} as ResearchEvent;
const _eventTypes: (typeof RESEARCH_EVENT_TYPES)[number] = "" as ResearchEventType;
const _summary: Omit<z.input<typeof ResearchListItemSchema>, "links" | "anomalyCount" | "anomalyTypes"> = {} as ResearchSummary;
