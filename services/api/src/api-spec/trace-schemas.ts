import { z } from "zod";
import {
  AnomalySchema,
  AnomalyTypeSchema,
  TRACE_KINDS,
  TRACE_STATUSES,
  type CostStats,
  type SpanRecord,
  type TraceListItem,
} from "@tracelane/trace-store";
import { apiSchemas } from "./registry.js";

/**
 * What the trace routes answer, as zod schemas (the OpenAPI document's components). The drift
 * checks at the end stop the build when they and the trace-store's types part ways.
 */

const Iso = z.string().meta({ format: "date-time" });
const EpochMs = z.number().meta({ description: "epoch milliseconds (fractional)" });

const CallBreakdownSchema = z.object({
  calls: z.number().int(),
  errors: z.number().int(),
  inputTokens: z.number().int(),
  outputTokens: z.number().int(),
  cachedInputTokens: z.number().int(),
  costUsd: z.number().nullable().meta({ description: "null when every call of the group is unpriced" }),
  unpricedCalls: z.number().int(),
  durationMs: z.number(),
});
apiSchemas.add(CallBreakdownSchema, { id: "CallBreakdown" });

const CallStatSchema = z.object({
  spanId: z.string(),
  stage: z.string(),
  model: z.string(),
  durationMs: z.number(),
  inputTokens: z.number().int(),
  outputTokens: z.number().int(),
  cachedInputTokens: z.number().int().optional().meta({ description: "part of inputTokens served from the prompt cache" }),
  costUsd: z.number().nullable(),
  error: z.boolean(),
  failedAttempt: z.boolean().optional().meta({ description: "the call or its job attempt failed: its cost is retry spend" }),
  priceVersion: z
    .string()
    .optional()
    .meta({ description: "the version of the collector's price table that priced the call; absent when unpriced" }),
});
apiSchemas.add(CallStatSchema, { id: "CallStat" });

const StageTokenFlowSchema = z.object({
  stage: z.string(),
  calls: z.number().int().meta({ description: "0 for a stage that made no model calls or whose spans have not arrived" }),
  inputTokens: z.number().int().meta({ description: "sum over the stage's calls, as in byStage" }),
  outputTokens: z.number().int(),
  maxCallInputTokens: z.number().int().meta({ description: "the input of the stage's largest call" }),
  growth: z.number().nullable().meta({
    description:
      "maxCallInputTokens / the outputTokens of the nearest earlier stage with calls; null when there is none, it wrote nothing, or this stage made no calls",
  }),
  complete: z.boolean().meta({ description: "false while some of the stage's spans have not arrived (its sums may still grow)" }),
});
apiSchemas.add(StageTokenFlowSchema, { id: "StageTokenFlow" });

const summaryFields = {
  traceId: z.string(),
  rootName: z.string(),
  rootService: z.string(),
  rootSpanId: z.string(),
  hasRoot: z.boolean(),
  status: z.enum(TRACE_STATUSES),
  startMs: EpochMs,
  endMs: EpochMs,
  startedAt: Iso,
  endedAt: Iso,
  durationMs: z.number(),
  spanCount: z.number().int(),
  droppedSpans: z.number().int(),
  maxDepth: z.number().int().optional().meta({ description: "the collector's TRACELANE_MAX_TRACE_DEPTH when it assembled the trace" }),
  tooDeepSpans: z.number().int().optional().meta({ description: "spans deeper than maxDepth: stored, cut from the tree" }),
  errorSpans: z.number().int(),
  services: z.array(z.string()),
  stages: z.array(z.string()),
  models: z.array(z.string()),
  researchId: z.string().optional().meta({ description: "absent on traces of no research (kind=all)" }),
  callCount: z.number().int(),
  inputTokens: z.number().int(),
  outputTokens: z.number().int(),
  cachedInputTokens: z.number().int(),
  costUsd: z.number(),
  unpricedCalls: z.number().int(),
  queueWaitMs: z.number(),
  modelTimeMs: z.number(),
  retries: z.number().int(),
  byStage: z.record(z.string(), CallBreakdownSchema),
  byModel: z.record(z.string(), CallBreakdownSchema),
  priceVersions: z.array(z.string()).meta({
    description: "the price table versions (tracelane.price.version) its calls were priced with by the collector, sorted and unique",
  }),
  tokenFlow: z.array(StageTokenFlowSchema).optional().meta({
    description:
      "tokens read and written per stage in pipeline order (the growth from stage to stage); absent on traces assembled before it",
  }),
  anomalyTypes: z.array(AnomalyTypeSchema),
};

export const TraceLinksSchema = z.object({
  self: z.string(),
  replay: z.string(),
  jaeger: z.string().optional().meta({ description: "the trace in the Jaeger UI, when JAEGER_UI_URL is set" }),
});
apiSchemas.add(TraceLinksSchema, { id: "TraceLinks" });

/** A trace summary with its model calls (GET /v1/traces/:traceId). */
const TraceSummarySchema = z.object({ ...summaryFields, calls: z.array(CallStatSchema) });
apiSchemas.add(TraceSummarySchema, { id: "TraceSummary" });

const TraceListItemSchema = z.object({ ...summaryFields, links: TraceLinksSchema });
apiSchemas.add(TraceListItemSchema, { id: "TraceListItem" });

export const TraceListSchema = z.object({
  traces: z.array(TraceListItemSchema),
  nextCursor: z.string().nullable(),
  links: z.object({ next: z.string().nullable() }),
});
apiSchemas.add(TraceListSchema, { id: "TraceList" });

const AttributesSchema = z.record(z.string(), z.unknown()).meta({ description: "OpenTelemetry attributes, made plain" });

const ModelCallSchema = z.object({
  model: z.string(),
  responseModel: z.string().optional(),
  provider: z.string().optional(),
  operation: z.string().optional(),
  inputTokens: z.number().int(),
  outputTokens: z.number().int(),
  cachedInputTokens: z.number().int(),
  costUsd: z.number().nullable(),
  reportedCostUsd: z.number().optional(),
  priceVersion: z
    .string()
    .optional()
    .meta({ description: "the version of the collector's price table that priced the call; absent when unpriced" }),
});
apiSchemas.add(ModelCallSchema, { id: "ModelCall" });

const spanFields = {
  traceId: z.string(),
  spanId: z.string(),
  parentSpanId: z.string().optional(),
  name: z.string(),
  kind: z.enum(["unspecified", "internal", "server", "client", "producer", "consumer"]),
  service: z.string(),
  startMs: EpochMs,
  endMs: EpochMs,
  durationMs: z.number(),
  startedAt: Iso,
  endedAt: Iso,
  status: z.enum(["unset", "ok", "error"]),
  statusMessage: z.string().optional(),
  attributes: AttributesSchema,
  events: z.array(z.object({ name: z.string(), timeMs: EpochMs, attributes: AttributesSchema.optional() })).optional(),
  links: z.array(z.object({ traceId: z.string(), spanId: z.string(), attributes: AttributesSchema.optional() })).optional(),
  clamped: z
    .object({
      truncatedValues: z.number().int(),
      droppedAttributes: z.number().int(),
      droppedEvents: z.number().int(),
      droppedLinks: z.number().int(),
    })
    .optional()
    .meta({ description: "what the collector's per-span limits cut from the span as sent" }),
  call: ModelCallSchema.optional().meta({ description: "present when the span is a model call" }),
};

/** One span of the tree, its children beneath it. */
const SpanTreeNodeSchema: z.ZodType = z.object({
  ...spanFields,
  depth: z.number().int(),
  stage: z.string().optional(),
  get children() {
    return z.array(SpanTreeNodeSchema);
  },
});
apiSchemas.add(SpanTreeNodeSchema, { id: "SpanTreeNode" });

apiSchemas.add(AnomalySchema, { id: "Anomaly" });

export const TraceDetailSchema = z.object({
  summary: TraceSummarySchema,
  tree: z.array(SpanTreeNodeSchema),
  anomalies: z.array(AnomalySchema),
  links: TraceLinksSchema,
});
apiSchemas.add(TraceDetailSchema, { id: "TraceDetail" });

export const AnomalyListSchema = z.object({
  anomalies: z.array(AnomalySchema.extend({ links: TraceLinksSchema })).meta({ description: "newest first" }),
});
apiSchemas.add(AnomalyListSchema, { id: "AnomalyList" });

const GroupCostStatsSchema = z.object({
  calls: z.number().int(),
  errors: z.number().int(),
  errorRate: z.number(),
  unpricedCalls: z.number().int(),
  costUsd: z.number(),
  retryCostUsd: z.number().meta({ description: "paid for calls whose answer was not used (the call or its job attempt failed)" }),
  usefulCostUsd: z.number().meta({ description: "costUsd - retryCostUsd" }),
  costShare: z.number(),
  inputTokens: z.number().int(),
  outputTokens: z.number().int(),
  tokens: z.number().int(),
  tokenShare: z.number(),
  latencyMs: z.object({ p50: z.number().nullable(), p95: z.number().nullable() }),
});
apiSchemas.add(GroupCostStatsSchema, { id: "GroupCostStats" });

export const CostStatsSchema = z.object({
  since: Iso,
  until: Iso,
  sinceMs: EpochMs,
  untilMs: EpochMs,
  kind: z.enum(TRACE_KINDS),
  traces: z.number().int(),
  calls: z.number().int(),
  costUsd: z.number(),
  retryCostUsd: z.number(),
  usefulCostUsd: z.number(),
  unpricedCalls: z.number().int(),
  inputTokens: z.number().int(),
  outputTokens: z.number().int(),
  byStage: z.record(z.string(), GroupCostStatsSchema),
  byModel: z.record(z.string(), GroupCostStatsSchema),
  truncated: z.boolean(),
});
apiSchemas.add(CostStatsSchema, { id: "CostStats" });

// Drift checks: the store's types must fit these schemas (a compile error names the field).
const _listItem: Omit<z.input<typeof TraceListItemSchema>, "links"> = {} as Omit<TraceListItem, "calls">;
const _summary: z.input<typeof TraceSummarySchema> = {} as TraceListItem;
const _span: z.input<z.ZodObject<typeof spanFields>> = {} as SpanRecord & { startedAt: string; endedAt: string };
const _stats: Omit<z.input<typeof CostStatsSchema>, "since" | "until" | "sinceMs" | "untilMs"> = {} as Omit<CostStats, "since" | "until">;

const WhatIfStageSchema = z.object({
  model: z.string().meta({ description: "the model the stage's calls ran on (the most used one)" }),
  models: z.record(z.string(), z.number().int()).meta({ description: "calls per model the stage ran on" }),
  whatIfModel: z.string(),
  calls: z.number().int(),
  actualCostUsd: z.number(),
  whatIfCostUsd: z.number(),
  unpricedCalls: z.number().int().meta({ description: "calls whose recorded cost is unknown: left out of both sums" }),
  flaggedCalls: z.number().int().meta({ description: "calls that would not fit the swapped model's context window (see flags)" }),
});

const whatIfFields = {
  swaps: z.record(z.string(), z.string()),
  actualCostUsd: z.number(),
  whatIfCostUsd: z.number(),
  savingUsd: z.number().meta({ description: "actualCostUsd - whatIfCostUsd (negative: the swap costs more)" }),
  savingShare: z.number(),
  byStage: z.record(z.string(), WhatIfStageSchema),
  flags: z
    .array(
      z.object({
        stage: z.string(),
        traceId: z.string().optional(),
        spanId: z.string().optional(),
        model: z.string(),
        whatIfModel: z.string(),
        reason: z.enum(["context_window"]),
        message: z.string(),
      }),
    )
    .meta({ description: "the first 100 flagged calls (flaggedCalls counts them all)" }),
  flaggedCalls: z.number().int(),
  assumptions: z.array(z.string()),
};

export const WhatIfSchema = z.object({ traceId: z.string(), ...whatIfFields, links: TraceLinksSchema });
apiSchemas.add(WhatIfSchema, { id: "WhatIf" });

export const WindowWhatIfSchema = z.object({
  since: Iso,
  until: Iso,
  sinceMs: EpochMs,
  untilMs: EpochMs,
  kind: z.enum(TRACE_KINDS),
  traces: z.number().int().meta({ description: "traces priced" }),
  truncated: z
    .boolean()
    .meta({ description: "more traces matched than one request reads (TRACELANE_WHAT_IF_MAX_TRACES): the newest were priced" }),
  truncatedNote: z.string().optional().meta({ description: "when truncated: what the figures cover and how to narrow the window" }),
  ...whatIfFields,
});
apiSchemas.add(WindowWhatIfSchema, { id: "WindowWhatIf" });
