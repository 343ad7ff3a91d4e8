import { z } from "zod";
import type { Pipeline } from "@tracelane/pipeline";
import { ResearchIdSchema } from "@tracelane/queue-contract";
import { RESEARCH_STATUSES } from "@tracelane/research-store";
import { AnomalyTypeSchema, TRACE_KINDS, TRACE_STATUSES } from "@tracelane/trace-store";
import {
  defineQuery,
  enumParam,
  numberParam,
  pageParams,
  repeatedStringParam,
  stringParam,
  timeParam,
  windowParams,
} from "../http/query.js";
import { IdempotencyKeySchema, LastEventIdSchema, researchRequestSchema } from "../validation.js";
import { RepriceAcceptedSchema, RepriceRequestSchema, RepriceStatusSchema } from "./admin-schemas.js";
import { ErrorSchema, HealthSchema, NotReadySchema, ReadySchema } from "./http-schemas.js";
import { ResearchCreatedSchema, ResearchEventSchema, ResearchListSchema, ResearchViewSchema } from "./research-schemas.js";
import {
  AnomalyListSchema,
  CostStatsSchema,
  TraceDetailSchema,
  TraceListSchema,
  WhatIfSchema,
  WindowWhatIfSchema,
} from "./trace-schemas.js";

/**
 * The api's JSON routes, one entry each: the routers mount their handlers at these paths and parse
 * with these query definitions, and the OpenAPI document (openapi.ts) is generated from the same
 * entries — so a route, its parameters and its answers are written down once. A test checks that
 * the routes the app serves and the routes described here are the same.
 */

/** What the request body schema depends on: the app's configuration. */
export interface BodyContext {
  maxQueryChars: number;
  pipeline: Pipeline<string, string>;
}

interface ResponseSpec {
  description: string;
  /** JSON body (application/json) unless `contentType` says otherwise. */
  schema?: z.ZodType;
  contentType?: "application/json" | "text/plain" | "text/html" | "text/event-stream";
  /** For text/event-stream: the JSON schema of each event's data. */
  eventSchema?: z.ZodType;
  headers?: Record<string, string>;
}

interface ParamSpec {
  description: string;
  schema: z.ZodType;
}

export interface RouteSpec {
  method: "get" | "post" | "delete";
  /** Express path ("/v1/research/:id"); the document writes it "/v1/research/{id}". */
  path: string;
  operationId: string;
  tag: "research" | "traces" | "admin" | "health" | "meta";
  summary: string;
  description?: string;
  params?: Record<string, ParamSpec>;
  query?: { readonly shape: Record<string, z.ZodType> };
  headers?: Record<string, ParamSpec>;
  body?: (ctx: BodyContext) => z.ZodType;
  responses: Record<number, ResponseSpec>;
}

// ---- parameters and queries (the routers parse with these) ----

const researchId: ParamSpec = { description: "research id, as POST /v1/research returned it", schema: ResearchIdSchema };

/** A W3C trace id: 32 hex characters (either case; answers use lower case). */
export const TraceIdParamSchema = z.string().regex(/^[0-9a-fA-F]{32}$/);
const traceId: ParamSpec = { description: "W3C trace id (32 hex characters)", schema: TraceIdParamSchema };

const kindParam = () =>
  enumParam("which traces: those of a research (default), or all (also foreign OTLP traces with no research id)", TRACE_KINDS, "research");

export const ResearchListQuery = defineQuery({
  status: enumParam("only researches in this status", RESEARCH_STATUSES),
  ...windowParams("createdAt"),
  ...pageParams(200, 50),
});

export const TracesQuery = defineQuery({
  kind: kindParam(),
  ...windowParams("trace start"),
  minCostUsd: numberParam("only traces that cost at least this (USD)", "a number of USD >= 0", { min: 0 }),
  minDurationMs: numberParam("only traces that lasted at least this long (ms)", "a number of milliseconds >= 0", { min: 0 }),
  anomaly: enumParam("only traces with an anomaly of this type", AnomalyTypeSchema.options),
  status: enumParam("only traces with this status", TRACE_STATUSES),
  model: stringParam("only traces that called this model", 200),
  sort: enumParam(
    "order: newest first (start), most expensive (cost) or slowest (duration) first",
    ["start", "cost", "duration"] as const,
    "start",
  ),
  ...pageParams(500, 50),
});

export const AnomaliesQuery = defineQuery({
  since: timeParam("earliest detection, inclusive"),
  type: enumParam("only anomalies of this type", AnomalyTypeSchema.options),
  limit: numberParam("most anomalies returned (default 100)", "an integer from 1 to 1000", { int: true, min: 1, max: 1_000, default: 100 }),
});

export const WhatIfQuery = defineQuery({
  swap: repeatedStringParam("<stage>:<model>: price that stage's calls on that model, e.g. factcheck:deepseek-v3.2", 240, 16),
});

export const CostsQuery = defineQuery({ kind: kindParam(), ...windowParams("trace start (default: the 24 hours before until)") });

export const WhatIfWindowQuery = defineQuery({
  swap: WhatIfQuery.shape.swap,
  kind: kindParam(),
  ...windowParams("trace start (default: the 24 hours before until)"),
});

// ---- answers ----

const error = (description: string): ResponseSpec => ({ description, schema: ErrorSchema });
const badQuery = error("invalid_query: a parameter is malformed, unknown or out of range (named in the message and details)");
const badId = error("invalid_request: the id is malformed");
const unknown = error("not_found");
const unavailable = error("unavailable: Redis cannot be reached (Retry-After)");
const adminKind = error("forbidden: kind=all needs an admin API key (a member key reads its own researches' traces)");
const rateLimited = error(
  "rate_limited: over RATE_LIMIT_PER_MINUTE (policy api) or, for POST /v1/research, RATE_LIMIT_NEW_RESEARCH_PER_MINUTE (policy new-research); Retry-After says when to retry. Every /v1 answer carries RateLimit-Policy and RateLimit (draft-ietf-httpapi-ratelimit-headers)",
);

// ---- the routes ----

export const ROUTES = {
  createResearch: {
    method: "post",
    path: "/v1/research",
    operationId: "createResearch",
    tag: "research",
    summary: "Submit a research query",
    description:
      "Stores the research and enqueues its first stage, and answers with its cost estimate (estimate: p50/p95 from recent completed researches on the same stages and models, or available: false while there is too little history). The same Idempotency-Key and body answer 200 with the same research (Idempotent-Replayed: true).",
    headers: {
      "Idempotency-Key": { description: "makes retries safe: same key + same body = same research", schema: IdempotencyKeySchema },
      traceparent: { description: "W3C trace context to continue", schema: z.string() },
    },
    body: ({ maxQueryChars, pipeline }) => researchRequestSchema(maxQueryChars, pipeline),
    responses: {
      202: { description: "queued", schema: ResearchCreatedSchema, headers: { Location: "/v1/research/{id}" } },
      200: { description: "an idempotent replay of an earlier request", schema: ResearchCreatedSchema },
      400: error(
        "invalid_json or invalid_request (the fields at fault in details), or model_not_allowed (options.models names a model its stage may not run; details: stage, model, allowed)",
      ),
      409: error("idempotency_conflict: the key was used with another body"),
      413: error("payload_too_large"),
      415: error("unsupported_media_type"),
      422: error(
        "estimate_over_budget: options.maxCostUsd (or DEFAULT_MAX_COST_USD) is below the estimate's p50; nothing was created and the Idempotency-Key stays unused; details: maxCostUsd, estimate. Raise maxCostUsd or send options.allowOverBudgetEstimate: true",
      ),
      429: error(
        "rate_limited (see the other routes), or daily_spend_cap_reached: this API key (client address without keys) spent DAILY_SPEND_CAP_USD today, nothing was created; Retry-After: until 00:00 UTC",
      ),
      503: error(
        "unavailable: Redis cannot be reached; or queue_full: a stage queue holds MAX_QUEUE_DEPTH waiting jobs, nothing was created (Retry-After)",
      ),
    },
  },
  listResearch: {
    method: "get",
    path: "/v1/research",
    operationId: "listResearch",
    tag: "research",
    summary: "Researches, newest first",
    query: ResearchListQuery,
    responses: {
      200: { description: "a page of researches", schema: ResearchListSchema },
      400: badQuery,
      503: unavailable,
      429: rateLimited,
    },
  },
  getResearch: {
    method: "get",
    path: "/v1/research/:id",
    operationId: "getResearch",
    tag: "research",
    summary: "A research: status, stages, result, totals",
    params: { id: researchId },
    responses: {
      200: { description: "the research", schema: ResearchViewSchema },
      400: badId,
      404: unknown,
      503: unavailable,
      429: rateLimited,
    },
  },
  researchEvents: {
    method: "get",
    path: "/v1/research/:id/events",
    operationId: "researchEvents",
    tag: "research",
    summary: "Server-sent events of a research's transitions",
    description:
      "Replays every event (or those after Last-Event-ID), then follows new ones; ends after research.completed, research.failed or research.cancelled.",
    params: { id: researchId },
    headers: { "Last-Event-ID": { description: "resume after this event id", schema: LastEventIdSchema } },
    responses: {
      200: {
        description: "event: <type>, id: <stream id>, data: a ResearchEvent as JSON; `: heartbeat` comments",
        contentType: "text/event-stream",
        eventSchema: ResearchEventSchema,
      },
      400: error("invalid_request: malformed id or Last-Event-ID"),
      404: unknown,
      429: error("rate_limited, or too_many_streams: this key has MAX_SSE_STREAMS_PER_KEY streams open (Retry-After)"),
      503: error("unavailable; or stream_capacity: this api process has MAX_SSE_STREAMS streams open (Retry-After)"),
    },
  },
  cancelResearch: {
    method: "delete",
    path: "/v1/research/:id",
    operationId: "cancelResearch",
    tag: "research",
    summary: "Cancel a queued or running research",
    params: { id: researchId },
    responses: {
      200: { description: "the cancelled research", schema: ResearchViewSchema },
      400: badId,
      404: unknown,
      409: error("already_finished"),
      503: unavailable,
      429: rateLimited,
    },
  },
  listTraces: {
    method: "get",
    path: "/v1/traces",
    operationId: "listTraces",
    tag: "traces",
    summary: "Traces the collector assembled (research traces unless kind=all)",
    query: TracesQuery,
    responses: {
      200: { description: "a page of trace summaries", schema: TraceListSchema },
      400: badQuery,
      403: adminKind,
      503: unavailable,
      429: rateLimited,
    },
  },
  getTrace: {
    method: "get",
    path: "/v1/traces/:traceId",
    operationId: "getTrace",
    tag: "traces",
    summary: "A trace: summary, span tree, anomalies, links",
    params: { traceId },
    responses: {
      200: { description: "the trace", schema: TraceDetailSchema },
      400: error("invalid_trace_id"),
      404: unknown,
      503: unavailable,
      429: rateLimited,
    },
  },
  traceReplay: {
    method: "get",
    path: "/v1/traces/:traceId/replay",
    operationId: "traceReplay",
    tag: "traces",
    summary: "A trace as plain text, one line per span",
    params: { traceId },
    responses: {
      200: { description: "the replay", contentType: "text/plain", schema: z.string() },
      400: error("invalid_trace_id"),
      404: unknown,
      429: rateLimited,
    },
  },
  traceWhatIf: {
    method: "get",
    path: "/v1/traces/:traceId/what-if",
    operationId: "traceWhatIf",
    tag: "traces",
    summary: "What the trace's calls would have cost with some stages on other models",
    description:
      "Every recorded call keeps its input, cached input and output tokens; the swapped stages' calls are priced at the other model's rates (to 1e-9 USD). A call that would not fit the other model's context window is flagged and left out of both totals.",
    params: { traceId },
    query: WhatIfQuery,
    responses: {
      200: { description: "actual and what-if cost, by stage, with flags and assumptions", schema: WhatIfSchema },
      400: error(
        "invalid_trace_id, invalid_query (a swap that is malformed, names no stage of the pipeline, or repeats a stage) or unknown_model (not in the price table)",
      ),
      404: unknown,
      429: rateLimited,
    },
  },
  listAnomalies: {
    method: "get",
    path: "/v1/anomalies",
    operationId: "listAnomalies",
    tag: "traces",
    summary: "Anomalies, newest first",
    query: AnomaliesQuery,
    responses: { 200: { description: "anomalies", schema: AnomalyListSchema }, 400: badQuery, 503: unavailable, 429: rateLimited },
  },
  costStats: {
    method: "get",
    path: "/v1/stats/costs",
    operationId: "costStats",
    tag: "traces",
    summary: "Cost, retry vs useful spend, tokens, latency and error rate per stage and model",
    query: CostsQuery,
    responses: {
      200: { description: "the statistics of the window", schema: CostStatsSchema },
      400: badQuery,
      403: adminKind,
      503: unavailable,
      429: rateLimited,
    },
  },
  windowWhatIf: {
    method: "get",
    path: "/v1/stats/what-if",
    operationId: "windowWhatIf",
    tag: "traces",
    summary: "What every trace of a window would have cost with some stages on other models",
    description:
      "Every trace started in the window that the caller may see (a member key: its own researches' traces), priced as GET /v1/traces/{traceId}/what-if prices one, and summed to 1e-9 USD: the answer is the sum of the traces' answers. At most TRACELANE_WHAT_IF_MAX_TRACES traces (newest first) are read; beyond that `truncated` is true and `truncatedNote` says how to narrow the window.",
    query: WhatIfWindowQuery,
    responses: {
      200: { description: "actual and what-if cost of the window, by stage, with flags and assumptions", schema: WindowWhatIfSchema },
      400: error(
        "invalid_query (a swap that is malformed, names no stage of the pipeline or repeats a stage; a bad window) or unknown_model (not in the price table)",
      ),
      403: adminKind,
      503: unavailable,
      429: rateLimited,
    },
  },
  createReprice: {
    method: "post",
    path: "/v1/admin/reprice",
    operationId: "createReprice",
    tag: "admin",
    summary: "Re-price the stored traces of a window (admin key)",
    description:
      "Hands the work to the trace-collector (the reprice queue): every stored trace whose start is in [since, until] gets each model call's cost recomputed from its recorded tokens with the collector's price table (or the one given), its summary (by stage, by model, calls), its cost index score and, for a finished research, the research's stage, claim and total costs. Idempotent: the same table again changes nothing. A call whose model was unpriced becomes priced once its model is in the table. Spend counters (DAILY_SPEND_CAP_USD) keep what was charged when the call was made.",
    body: () => RepriceRequestSchema,
    responses: {
      202: { description: "queued: follow links.self", schema: RepriceAcceptedSchema, headers: { Location: "/v1/admin/reprice/{id}" } },
      400: error(
        "invalid_json or invalid_request: since/until malformed, until before since, or priceTable invalid (the field at fault in details)",
      ),
      403: error("forbidden: a member key (re-pricing needs an admin key)"),
      413: error("payload_too_large"),
      503: unavailable,
      429: rateLimited,
    },
  },
  getReprice: {
    method: "get",
    path: "/v1/admin/reprice/:id",
    operationId: "getReprice",
    tag: "admin",
    summary: "A reprice's state and progress (admin key)",
    params: { id: { description: "reprice id, as POST /v1/admin/reprice returned it", schema: z.string() } },
    responses: {
      200: { description: "state, traces done of the total, calls re-priced, costs before and after", schema: RepriceStatusSchema },
      400: badId,
      403: error("forbidden: a member key"),
      404: unknown,
      503: unavailable,
      429: rateLimited,
    },
  },
  healthz: {
    method: "get",
    path: "/healthz",
    operationId: "healthz",
    tag: "health",
    summary: "Liveness: the process is up",
    responses: { 200: { description: "up", schema: HealthSchema } },
  },
  readyz: {
    method: "get",
    path: "/readyz",
    operationId: "readyz",
    tag: "health",
    summary: "Readiness: Redis answers PING",
    responses: { 200: { description: "ready", schema: ReadySchema }, 503: { description: "not ready", schema: NotReadySchema } },
  },
  openapi: {
    method: "get",
    path: "/openapi.json",
    operationId: "openapi",
    tag: "meta",
    summary: "This document (OpenAPI 3.1)",
    responses: { 200: { description: "the OpenAPI document", schema: z.record(z.string(), z.unknown()) } },
  },
  docs: {
    method: "get",
    path: "/docs",
    operationId: "docs",
    tag: "meta",
    summary: "This document as one HTML page for people",
    responses: { 200: { description: "the page", contentType: "text/html", schema: z.string() } },
  },
} as const satisfies Record<string, RouteSpec>;
