import { z } from "zod";

/**
 * The parts of the api's answers the CLI reads (loose: fields it does not show may come and go).
 * `--json` prints the api's body unchanged; these only guard the human-readable output.
 */

const Usage = z.object({ inputTokens: z.number(), outputTokens: z.number() });

const StageRecord = z.looseObject({
  status: z.string(),
  model: z.string().optional(),
  latencyMs: z.number().optional(),
  queueWaitMs: z.number().optional(),
  usage: Usage.optional(),
  costUsd: z.number().nullable().optional(),
  attempts: z.number(),
  error: z.object({ type: z.string(), message: z.string() }).optional(),
  /** A fan-out stage's claims, each checked as its own job. */
  claims: z
    .array(
      z.looseObject({
        index: z.number(),
        claim: z.string(),
        status: z.string(),
        verdict: z.string().optional(),
        costUsd: z.number().nullable().optional(),
        latencyMs: z.number().optional(),
        modelCalls: z.number().optional(),
        toolCalls: z.number().optional(),
        attempts: z.number(),
        error: z.object({ type: z.string(), message: z.string() }).optional(),
      }),
    )
    .optional(),
});

const ResearchLinks = z.looseObject({
  self: z.string(),
  events: z.string(),
  trace: z.string().optional(),
  /** The console's page for the research's trace (when the api serves the console). */
  ui: z.string().optional(),
});

export const FINAL_STATUSES = ["completed", "failed", "cancelled"] as const;

export const ResearchViewSchema = z.looseObject({
  id: z.string(),
  status: z.enum(["queued", "running", ...FINAL_STATUSES]),
  stage: z.string().nullable(),
  query: z.string(),
  createdAt: z.string(),
  finishedAt: z.string().optional(),
  traceId: z.string().nullable(),
  /** One row per stage, in pipeline order. */
  stages: z.record(z.string(), StageRecord),
  /** Every stage's output by output name, in pipeline order: the last one is the report. */
  result: z.record(z.string(), z.string()).optional(),
  partialResult: z.record(z.string(), z.string()).optional(),
  totals: z.looseObject({
    inputTokens: z.number(),
    outputTokens: z.number(),
    costUsd: z.number(),
    unpricedModels: z.array(z.string()),
    latencyMs: z.number(),
  }),
  error: z.object({ stage: z.string().nullable(), type: z.string(), message: z.string() }).optional(),
  links: ResearchLinks.optional(),
});
export type ResearchView = z.infer<typeof ResearchViewSchema>;

export const ResearchListSchema = z.looseObject({
  researches: z.array(
    ResearchViewSchema.omit({ result: true, partialResult: true }).extend({
      anomalyCount: z.number(),
      anomalyTypes: z.array(z.string()),
    }),
  ),
  nextCursor: z.string().nullable(),
});

/** The cost estimate POST /v1/research answers with (an api without one sends none). */
const EstimateSchema = z.looseObject({
  available: z.boolean(),
  reason: z.string().optional(),
  p50: z.number().optional(),
  p95: z.number().optional(),
  basis: z.looseObject({ stages: z.record(z.string(), z.looseObject({ model: z.string(), samples: z.number() })) }),
});
export type Estimate = z.infer<typeof EstimateSchema>;

export const SubmittedSchema = z.looseObject({
  id: z.string(),
  status: z.string(),
  traceId: z.string().nullable(),
  links: ResearchLinks,
  estimate: EstimateSchema.optional(),
});

/** One research event as the SSE stream and the store carry it. */
export const ResearchEventSchema = z.looseObject({
  id: z.string(),
  type: z.string(),
  status: z.string(),
  stage: z.string().nullable(),
  at: z.string(),
  data: z.record(z.string(), z.unknown()).optional(),
});
export type ResearchEvent = z.infer<typeof ResearchEventSchema>;

export const TraceListSchema = z.looseObject({
  traces: z.array(
    z.looseObject({
      traceId: z.string(),
      rootName: z.string(),
      status: z.string(),
      startedAt: z.string(),
      durationMs: z.number(),
      costUsd: z.number(),
      unpricedCalls: z.number(),
      callCount: z.number(),
      spanCount: z.number(),
      models: z.array(z.string()),
      anomalyTypes: z.array(z.string()),
    }),
  ),
  nextCursor: z.string().nullable(),
});

const GroupCost = z.looseObject({
  calls: z.number(),
  errors: z.number(),
  errorRate: z.number(),
  unpricedCalls: z.number(),
  costUsd: z.number(),
  costShare: z.number(),
  /** Paid calls whose answer was not used (the call or its job attempt failed); absent from older apis. */
  retryCostUsd: z.number().optional(),
  inputTokens: z.number(),
  outputTokens: z.number(),
  latencyMs: z.object({ p50: z.number().nullable(), p95: z.number().nullable() }),
});
export type GroupCost = z.infer<typeof GroupCost>;

export const CostStatsSchema = z.looseObject({
  since: z.string(),
  until: z.string(),
  traces: z.number(),
  calls: z.number(),
  costUsd: z.number(),
  retryCostUsd: z.number().optional(),
  usefulCostUsd: z.number().optional(),
  unpricedCalls: z.number(),
  inputTokens: z.number(),
  outputTokens: z.number(),
  byStage: z.record(z.string(), GroupCost),
  byModel: z.record(z.string(), GroupCost),
  truncated: z.boolean(),
});

const WhatIfStage = z.looseObject({
  model: z.string(),
  whatIfModel: z.string(),
  calls: z.number(),
  actualCostUsd: z.number(),
  whatIfCostUsd: z.number(),
  unpricedCalls: z.number(),
  flaggedCalls: z.number(),
});

/** GET /v1/stats/what-if (window fields) or GET /v1/traces/:traceId/what-if (traceId). */
export const WhatIfSchema = z.looseObject({
  traceId: z.string().optional(),
  since: z.string().optional(),
  until: z.string().optional(),
  traces: z.number().optional(),
  truncated: z.boolean().optional(),
  truncatedNote: z.string().optional(),
  actualCostUsd: z.number(),
  whatIfCostUsd: z.number(),
  savingUsd: z.number(),
  savingShare: z.number(),
  byStage: z.record(z.string(), WhatIfStage),
  flags: z.array(z.looseObject({ stage: z.string(), traceId: z.string().optional(), spanId: z.string().optional(), message: z.string() })),
  flaggedCalls: z.number().optional(),
  assumptions: z.array(z.string()),
});
