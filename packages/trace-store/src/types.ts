import { z } from "zod";

/** Attribute values as they come out of OTLP (AnyValue), made plain. */
export type AttributeValue = string | number | boolean | null | AttributeValue[] | { [key: string]: AttributeValue };
export type Attributes = Record<string, AttributeValue>;

export type SpanKindName = "unspecified" | "internal" | "server" | "client" | "producer" | "consumer";
export type SpanStatusName = "unset" | "ok" | "error";

export interface SpanEventRecord {
  name: string;
  timeMs: number;
  attributes?: Attributes;
}

export interface SpanLinkRecord {
  traceId: string;
  spanId: string;
  attributes?: Attributes;
}

/** Counts of what the per-span limits cut from one span (see the collector's otlp-common.ts). */
export interface SpanClamped {
  /** String values (attributes, event/link attributes, name, status message) truncated. */
  truncatedValues: number;
  /** Attributes dropped: over the count limit, a key too long, or the span's value budget spent. */
  droppedAttributes: number;
  droppedEvents: number;
  droppedLinks: number;
}

/** A model call, as priced by the collector's own price table. */
export interface ModelCall {
  /** gen_ai.request.model, else gen_ai.response.model: the name filters and breakdowns use. */
  model: string;
  responseModel?: string;
  provider?: string;
  operation?: string;
  inputTokens: number;
  outputTokens: number;
  cachedInputTokens: number;
  /** USD from the collector's price table; null when the model is not priced (never a silent 0). */
  costUsd: number | null;
  /** tracelane.usage.cost_usd as reported by the emitting service, kept for comparison. */
  reportedCostUsd?: number;
  /** The version of the collector's price table that priced the call (at its start); absent when unpriced. */
  priceVersion?: string;
}

/** One span as stored (one field of the per-trace spans hash, JSON). */
export interface SpanRecord {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: SpanKindName;
  /** resource attribute service.name ("unknown_service" when absent). */
  service: string;
  /** Epoch milliseconds (fractional). */
  startMs: number;
  endMs: number;
  /** Rounded to 0.1 ms. */
  durationMs: number;
  /** ISO 8601 forms of startMs/endMs; added when a trace is read, not stored. */
  startedAt?: string;
  endedAt?: string;
  status: SpanStatusName;
  statusMessage?: string;
  attributes: Attributes;
  events?: SpanEventRecord[];
  /** Links to other spans (OTLP span links; e.g. the caller's context a research did not continue). */
  links?: SpanLinkRecord[];
  /** What the collector cut to its per-span limits (present only when something was cut): the span is not stored as sent. */
  clamped?: SpanClamped;
  /** Present when the span is a model call (has gen_ai.request.model or gen_ai.response.model). */
  call?: ModelCall;
}

export const ANOMALY_TYPES = [
  "high_latency",
  "high_tokens",
  "high_cost",
  "error",
  "unpriced_model",
  "latency_vs_baseline",
  "retries",
  "trace_cost_over_budget",
  "trace_duration_over_slo",
  "context_bloat",
] as const;
export const AnomalyTypeSchema = z.enum(ANOMALY_TYPES);
export type AnomalyType = (typeof ANOMALY_TYPES)[number];

export const TRACE_STATUSES = ["ok", "error"] as const;
export type TraceStatus = (typeof TRACE_STATUSES)[number];

export const AnomalySchema = z.object({
  type: AnomalyTypeSchema,
  traceId: z.string(),
  /** Empty for trace-level anomalies (budget, SLO). */
  spanId: z.string(),
  spanName: z.string().optional(),
  stage: z.string().optional(),
  model: z.string().optional(),
  /** For a model call: the HTTP attempts it made (1 + the model client's retries). */
  attempts: z.number().int().positive().optional(),
  /** For a failed or retried model call: what went wrong (rate_limit, provider_error, timeout...). */
  cause: z.string().optional(),
  /** The measured value, in `unit`. */
  value: z.number(),
  /** The threshold it was compared with (value >= threshold fires). */
  threshold: z.number(),
  unit: z.enum(["ms", "tokens", "usd", "count"]),
  message: z.string(),
  recommendation: z.string(),
  /** ISO time of first detection; later detections of the same (trace, span, type) are duplicates. */
  detectedAt: z.string(),
});
export type Anomaly = z.infer<typeof AnomalySchema>;

/** Totals of model calls for one stage or one model inside a trace. */
export interface CallBreakdown {
  calls: number;
  errors: number;
  inputTokens: number;
  outputTokens: number;
  cachedInputTokens: number;
  /** Sum over priced calls; null when every call of the group is unpriced. */
  costUsd: number | null;
  unpricedCalls: number;
  /** Sum of call durations. */
  durationMs: number;
}

/** One model call in compact form, kept in the summary so cost statistics need no span reads. */
export interface CallStat {
  spanId: string;
  stage: string;
  model: string;
  durationMs: number;
  inputTokens: number;
  outputTokens: number;
  /** Part of inputTokens served from the prompt cache. Absent in summaries stored before this field (see TraceReader.recordedCalls). */
  cachedInputTokens?: number;
  costUsd: number | null;
  error: boolean;
  /**
   * The call's result was not used: the call failed, or the job attempt it ran in (its CONSUMER
   * span) failed — BullMQ retried the stage, or the research failed or was cancelled there. Its cost
   * is retry spend. Absent in summaries stored before this field: read as `error`.
   */
  failedAttempt?: boolean;
  /** The collector's price table version that priced it; absent when unpriced. */
  priceVersion?: string;
}

/**
 * One stage in a trace's token flow: what its model calls read and wrote, so the growth from one
 * stage's output to the next stage's input shows (the context_bloat rule judges these numbers).
 */
export interface StageTokenFlow {
  stage: string;
  /** 0 for a stage that made no model calls (a fact-check without claims) or whose spans have not arrived. */
  calls: number;
  /** Sums over the stage's calls, as in byStage (a fan-out stage: over all its claim calls). */
  inputTokens: number;
  outputTokens: number;
  /** The input of the stage's largest call: the most one context window held. */
  maxCallInputTokens: number;
  /**
   * maxCallInputTokens / the outputTokens of the nearest earlier stage with calls: how many tokens the
   * largest call read per token handed over (2 decimals); null when there is no such stage, it wrote
   * nothing, or this stage made no calls.
   */
  growth: number | null;
  /**
   * False while some of the stage's spans may still be on their way: none has arrived yet, a call whose
   * job span has not arrived, or a fan-in whose claim spans have not all arrived. Its sums may still grow.
   */
  complete: boolean;
}

export interface TraceSummary {
  traceId: string;
  rootName: string;
  rootService: string;
  rootSpanId: string;
  /** False while the root span (no parent) has not arrived. */
  hasRoot: boolean;
  /** "error" when a span failed and nothing above it recovered (see README). */
  status: TraceStatus;
  /** Epoch milliseconds; startedAt/endedAt are the same instants in ISO 8601. */
  startMs: number;
  endMs: number;
  startedAt?: string;
  endedAt?: string;
  /** Rounded to 0.1 ms, like every duration here. */
  durationMs: number;
  spanCount: number;
  /** Spans refused because the trace reached TRACELANE_MAX_SPANS_PER_TRACE. */
  droppedSpans: number;
  /** The depth limit (TRACELANE_MAX_TRACE_DEPTH) and the spans below it: cut from the tree, stored but not shown. */
  maxDepth?: number;
  tooDeepSpans?: number;
  errorSpans: number;
  services: string[];
  stages: string[];
  models: string[];
  researchId?: string;
  callCount: number;
  inputTokens: number;
  outputTokens: number;
  cachedInputTokens: number;
  /** Exact sum over priced calls, to 1e-9 USD (unpriced calls are counted in unpricedCalls, not as $0). */
  costUsd: number;
  unpricedCalls: number;
  /** Sum of tracelane.queue.wait_ms over consumer spans. */
  queueWaitMs: number;
  /** Sum of model call durations. */
  modelTimeMs: number;
  retries: number;
  byStage: Record<string, CallBreakdown>;
  byModel: Record<string, CallBreakdown>;
  /**
   * Tokens read and written per stage, in pipeline order: every pipeline stage from the first seen to
   * the last seen, then stages the pipeline does not name (calls of no stage are left out). Absent in
   * summaries stored before this field.
   */
  tokenFlow?: StageTokenFlow[];
  calls: CallStat[];
  /** The price table versions its calls were priced with, sorted and unique (more than one: the table changed mid-trace). */
  priceVersions: string[];
}

/** A summary as the reader returns it: with ISO times and the anomaly types found so far. */
export interface TraceListItem extends TraceSummary {
  startedAt: string;
  endedAt: string;
  anomalyTypes: AnomalyType[];
}

export type SpanTreeNode = SpanRecord & { depth: number; stage?: string; children: SpanTreeNode[] };

export interface TraceDetail {
  summary: TraceListItem;
  spans: SpanRecord[];
  tree: SpanTreeNode[];
  anomalies: Anomaly[];
}

export type TraceSort = "start" | "cost" | "duration";

/** "research": traces of a research (a span carries research.id); "all": also any other trace sent to the collector. */
export const TRACE_KINDS = ["research", "all"] as const;
export type TraceKind = (typeof TRACE_KINDS)[number];

export interface TraceFilter {
  /** Trace start, epoch ms, inclusive. */
  since?: number;
  /** Trace start, epoch ms, inclusive. */
  until?: number;
  minCostUsd?: number;
  minDurationMs?: number;
  anomaly?: AnomalyType;
  status?: TraceStatus;
  model?: string;
  /** Newest first by default; "cost"/"duration" list the most expensive/slowest first. */
  sort?: TraceSort;
  /** Default "all". */
  kind?: TraceKind;
  limit?: number;
  cursor?: string;
}

export interface TraceListPage {
  traces: TraceListItem[];
  nextCursor?: string;
}

export interface AnomalyQuery {
  /** detectedAt, epoch ms, inclusive. */
  since?: number;
  type?: AnomalyType;
  limit?: number;
}

export interface GroupCostStats {
  calls: number;
  errors: number;
  errorRate: number;
  unpricedCalls: number;
  costUsd: number;
  /** Spent on calls whose result was not used (CallStat.failedAttempt): the cost of retries. */
  retryCostUsd: number;
  /** costUsd - retryCostUsd: spent on the calls whose answers the research used. */
  usefulCostUsd: number;
  /** costUsd / total cost of the window (0 when the total is 0). */
  costShare: number;
  inputTokens: number;
  outputTokens: number;
  tokens: number;
  tokenShare: number;
  latencyMs: { p50: number | null; p95: number | null };
}

/** The window (trace start, epoch ms, inclusive; default the 24 h before `until`, which defaults to now) and kind (default "all") costStats aggregates. */
export interface CostStatsQuery {
  since?: number;
  until?: number;
  kind?: TraceKind;
}

export interface CostStats {
  since: number;
  until: number;
  kind: TraceKind;
  traces: number;
  calls: number;
  costUsd: number;
  /** As per group: retry spend and useful spend, which add up to costUsd exactly. */
  retryCostUsd: number;
  usefulCostUsd: number;
  unpricedCalls: number;
  inputTokens: number;
  outputTokens: number;
  byStage: Record<string, GroupCostStats>;
  byModel: Record<string, GroupCostStats>;
  /** True when more traces matched than the reader scans in one call (maxScan). */
  truncated: boolean;
}
