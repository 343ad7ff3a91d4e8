/**
 * What the console reads from the api, checked when it arrives (a response that does not fit is an
 * error on screen naming the field, not a blank page). Loose objects: the fields the console shows
 * are required, anything else the api adds passes through.
 */
import * as z from "zod/mini";

const usdOrNull = z.nullable(z.number());

const StageRecordSchema = z.looseObject({
  status: z.string(),
  model: z.optional(z.string()),
  startedAt: z.optional(z.string()),
  finishedAt: z.optional(z.string()),
  latencyMs: z.optional(z.number()),
  queueWaitMs: z.optional(z.number()),
  usage: z.optional(z.object({ inputTokens: z.number(), outputTokens: z.number() })),
  costUsd: z.optional(usdOrNull),
  attempts: z.number(),
  error: z.optional(z.object({ type: z.string(), message: z.string() })),
  /** A fan-out stage's claims, each checked as its own job. */
  claims: z.optional(
    z.array(
      z.looseObject({
        index: z.number(),
        claim: z.string(),
        status: z.string(),
        verdict: z.optional(z.string()),
        costUsd: z.optional(usdOrNull),
        latencyMs: z.optional(z.number()),
        toolCalls: z.optional(z.number()),
        error: z.optional(z.object({ type: z.string(), message: z.string() })),
      }),
    ),
  ),
});

export const ResearchSchema = z.looseObject({
  id: z.string(),
  status: z.string(),
  stage: z.nullable(z.string()),
  query: z.string(),
  createdAt: z.string(),
  updatedAt: z.string(),
  finishedAt: z.optional(z.string()),
  traceId: z.nullable(z.string()),
  stages: z.record(z.string(), StageRecordSchema),
  /** Every stage's output by its output name, in pipeline order, once completed. */
  result: z.optional(z.record(z.string(), z.string())),
  totals: z.looseObject({
    inputTokens: z.number(),
    outputTokens: z.number(),
    costUsd: z.number(),
    unpricedModels: z.array(z.string()),
    latencyMs: z.number(),
  }),
  error: z.optional(z.looseObject({ stage: z.nullable(z.string()), type: z.string(), message: z.string() })),
  /** Present on list items when the api joins the trace's anomalies. */
  anomalyTypes: z.optional(z.array(z.string())),
});
export type Research = z.infer<typeof ResearchSchema>;

export const ResearchListSchema = z.looseObject({
  researches: z.array(ResearchSchema),
  nextCursor: z.optional(z.nullable(z.string())),
});

/** POST /v1/research's cost estimate (p50/p95 from recent researches), or why there is none yet. */
const EstimateSchema = z.looseObject({
  available: z.boolean(),
  reason: z.optional(z.string()),
  p50: z.optional(z.number()),
  p95: z.optional(z.number()),
});
export type Estimate = z.infer<typeof EstimateSchema>;

export const SubmittedSchema = z.looseObject({
  id: z.string(),
  status: z.string(),
  traceId: z.nullable(z.string()),
  estimate: z.optional(EstimateSchema),
});

export const ResearchEventSchema = z.looseObject({
  id: z.string(),
  type: z.string(),
  researchId: z.string(),
  status: z.string(),
  stage: z.nullable(z.string()),
  at: z.string(),
  data: z.optional(z.record(z.string(), z.unknown())),
});

const Breakdown = z.looseObject({
  calls: z.number(),
  errors: z.number(),
  inputTokens: z.number(),
  outputTokens: z.number(),
  costUsd: usdOrNull,
  durationMs: z.number(),
});

export const TraceListItemSchema = z.looseObject({
  traceId: z.string(),
  rootName: z.string(),
  status: z.string(),
  startMs: z.number(),
  startedAt: z.string(),
  durationMs: z.number(),
  spanCount: z.number(),
  stages: z.array(z.string()),
  models: z.array(z.string()),
  researchId: z.optional(z.string()),
  callCount: z.number(),
  inputTokens: z.number(),
  outputTokens: z.number(),
  costUsd: z.number(),
  unpricedCalls: z.number(),
  queueWaitMs: z.number(),
  modelTimeMs: z.number(),
  retries: z.number(),
  byStage: z.record(z.string(), Breakdown),
  anomalyTypes: z.array(z.string()),
});

export const TraceListSchema = z.looseObject({ traces: z.array(TraceListItemSchema), nextCursor: z.optional(z.nullable(z.string())) });

const AttributeValue = z.unknown();

export const AnomalySchema = z.looseObject({
  type: z.string(),
  traceId: z.string(),
  spanId: z.string(),
  spanName: z.optional(z.string()),
  stage: z.optional(z.string()),
  model: z.optional(z.string()),
  attempts: z.optional(z.number()),
  cause: z.optional(z.string()),
  value: z.number(),
  threshold: z.number(),
  unit: z.string(),
  message: z.string(),
  recommendation: z.string(),
  detectedAt: z.string(),
});
export type Anomaly = z.infer<typeof AnomalySchema>;

export interface SpanNode {
  spanId: string;
  parentSpanId?: string | undefined;
  name: string;
  kind: string;
  service: string;
  startMs: number;
  endMs: number;
  durationMs: number;
  status: string;
  statusMessage?: string | undefined;
  attributes: Record<string, unknown>;
  events?: { name: string; timeMs: number; attributes?: Record<string, unknown> | undefined }[] | undefined;
  call?:
    | {
        model: string;
        provider?: string | undefined;
        inputTokens: number;
        outputTokens: number;
        cachedInputTokens: number;
        costUsd: number | null;
      }
    | undefined;
  depth: number;
  stage?: string | undefined;
  children: SpanNode[];
}

export const SpanNodeSchema: z.ZodMiniType<SpanNode> = z.lazy(() =>
  z.looseObject({
    spanId: z.string(),
    parentSpanId: z.optional(z.string()),
    name: z.string(),
    kind: z.string(),
    service: z.string(),
    startMs: z.number(),
    endMs: z.number(),
    durationMs: z.number(),
    status: z.string(),
    statusMessage: z.optional(z.string()),
    attributes: z.record(z.string(), AttributeValue),
    events: z.optional(
      z.array(z.looseObject({ name: z.string(), timeMs: z.number(), attributes: z.optional(z.record(z.string(), AttributeValue)) })),
    ),
    call: z.optional(
      z.looseObject({
        model: z.string(),
        provider: z.optional(z.string()),
        inputTokens: z.number(),
        outputTokens: z.number(),
        cachedInputTokens: z.number(),
        costUsd: usdOrNull,
      }),
    ),
    depth: z.number(),
    stage: z.optional(z.string()),
    children: z.array(SpanNodeSchema),
  }),
);

/** One stage of a trace's token flow (absent on traces assembled before it). */
const TokenFlowStep = z.looseObject({
  stage: z.string(),
  calls: z.number(),
  inputTokens: z.number(),
  outputTokens: z.number(),
  maxCallInputTokens: z.number(),
  growth: z.nullable(z.number()),
  complete: z.boolean(),
});
export type TokenFlowStep = z.infer<typeof TokenFlowStep>;

export const TraceDetailSchema = z.looseObject({
  summary: z.extend(TraceListItemSchema, {
    endMs: z.number(),
    hasRoot: z.boolean(),
    droppedSpans: z.number(),
    errorSpans: z.number(),
    priceVersions: z.optional(z.array(z.string())),
    tokenFlow: z.optional(z.array(TokenFlowStep)),
  }),
  tree: z.array(SpanNodeSchema),
  anomalies: z.array(AnomalySchema),
  links: z.looseObject({ jaeger: z.optional(z.string()) }),
});
export type TraceDetail = z.infer<typeof TraceDetailSchema>;

export const AnomalyListSchema = z.looseObject({ anomalies: z.array(AnomalySchema) });

const GroupStats = z.looseObject({
  calls: z.number(),
  errors: z.number(),
  errorRate: z.number(),
  unpricedCalls: z.number(),
  costUsd: z.number(),
  costShare: z.number(),
  inputTokens: z.number(),
  outputTokens: z.number(),
  tokens: z.number(),
  latencyMs: z.object({ p50: z.nullable(z.number()), p95: z.nullable(z.number()) }),
  /** Spend on model calls' failed attempts and on retried jobs, when the api reports it. */
  retryCostUsd: z.optional(z.number()),
  usefulCostUsd: z.optional(z.number()),
});
export type GroupStats = z.infer<typeof GroupStats>;

export const CostStatsSchema = z.looseObject({
  since: z.string(),
  until: z.string(),
  traces: z.number(),
  calls: z.number(),
  costUsd: z.number(),
  unpricedCalls: z.number(),
  inputTokens: z.number(),
  outputTokens: z.number(),
  byStage: z.record(z.string(), GroupStats),
  byModel: z.record(z.string(), GroupStats),
  truncated: z.boolean(),
  retryCostUsd: z.optional(z.number()),
  usefulCostUsd: z.optional(z.number()),
});
export type CostStats = z.infer<typeof CostStatsSchema>;

export const ApiErrorBodySchema = z.object({ error: z.object({ code: z.string(), message: z.string() }) });

const WhatIfStageSchema = z.looseObject({
  model: z.string(),
  whatIfModel: z.string(),
  calls: z.number(),
  actualCostUsd: z.number(),
  whatIfCostUsd: z.number(),
  unpricedCalls: z.number(),
  flaggedCalls: z.number(),
});

/** GET /v1/stats/what-if: a window's calls priced with some stages on other models. */
export const WindowWhatIfSchema = z.looseObject({
  since: z.string(),
  until: z.string(),
  traces: z.number(),
  truncated: z.boolean(),
  truncatedNote: z.optional(z.string()),
  actualCostUsd: z.number(),
  whatIfCostUsd: z.number(),
  savingUsd: z.number(),
  savingShare: z.number(),
  byStage: z.record(z.string(), WhatIfStageSchema),
  flags: z.array(
    z.looseObject({ stage: z.string(), traceId: z.optional(z.string()), spanId: z.optional(z.string()), message: z.string() }),
  ),
  flaggedCalls: z.number(),
  assumptions: z.array(z.string()),
});
export type WindowWhatIf = z.infer<typeof WindowWhatIfSchema>;
