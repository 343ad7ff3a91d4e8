import { Router, type Request, type Response } from "express";
import {
  AnomalyTypeSchema,
  jaegerTraceUrl,
  TRACE_ID_RE,
  TRACE_KINDS,
  TRACE_STATUSES,
  type TraceListItem,
  type TraceReader,
} from "@tracelane/trace-store";
import { HttpError, notFound } from "../http/errors.js";
import {
  defineQuery,
  enumParam,
  given,
  nextPageLink,
  numberParam,
  pageParams,
  stringParam,
  timeParam,
  windowParams,
  withCursor,
} from "../http/query.js";

export interface TracesRouterDeps {
  reader: TraceReader;
  /** Public Jaeger UI base URL (JAEGER_UI_URL); responses link each trace to it when set. */
  jaegerUiUrl?: string;
}

const DAY_MS = 24 * 3600 * 1000;

/** research (default): traces of a research; all: also the api's own traced requests and foreign OTLP traces. */
const kindParam = () =>
  enumParam("which traces: those of a research (default), or all (also foreign OTLP traces with no research id)", TRACE_KINDS, "research");

const TracesQuery = defineQuery({
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

const AnomaliesQuery = defineQuery({
  since: timeParam("earliest detection, inclusive"),
  type: enumParam("only anomalies of this type", AnomalyTypeSchema.options),
  limit: numberParam("most anomalies returned (default 100)", "an integer from 1 to 1000", { int: true, min: 1, max: 1_000, default: 100 }),
});

const CostsQuery = defineQuery({ kind: kindParam(), ...windowParams("trace start (default: the 24 hours before until)") });

function parseTraceId(raw: string): string {
  const id = raw.toLowerCase();
  if (!TRACE_ID_RE.test(id)) {
    throw new HttpError(
      400,
      "invalid_trace_id",
      `"${raw.slice(0, 80)}" is not a trace id: expected 32 hexadecimal characters (W3C trace id).`,
      {
        parameter: "traceId",
      },
    );
  }
  return id;
}

/**
 * Read-only trace API over the trace-collector's store:
 *   GET /v1/traces                   list + filters (kind, since, until, minCostUsd, minDurationMs, anomaly, status, model, sort, limit, cursor)
 *   GET /v1/traces/:traceId          summary, span tree, anomalies, links (Jaeger when configured)
 *   GET /v1/traces/:traceId/replay   plain-text replay
 *   GET /v1/anomalies                newest first (since, type, limit)
 *   GET /v1/stats/costs              per stage and per model cost, tokens, latency, error rate (kind, since, until; default last 24 h)
 * The list and the stats count research traces unless kind=all.
 */
export function createTracesRouter(deps: TracesRouterDeps): Router {
  const { reader } = deps;
  const router = Router();

  const links = (traceId: string) => ({
    self: `/v1/traces/${traceId}`,
    replay: `/v1/traces/${traceId}/replay`,
    ...(deps.jaegerUiUrl ? { jaeger: jaegerTraceUrl(deps.jaegerUiUrl, traceId) } : {}),
  });
  // The compact list form: per-call details stay on GET /v1/traces/:traceId.
  const listItem = ({ calls: _calls, ...summary }: TraceListItem) => ({ ...summary, links: links(summary.traceId) });

  router.get("/v1/traces", async (req: Request, res: Response) => {
    const q = TracesQuery.parse(req.query);
    const page = await withCursor(() => reader.listTraces({ ...given(q), kind: q.kind ?? "research" }));
    res.json({
      traces: page.traces.map(listItem),
      nextCursor: page.nextCursor ?? null,
      links: { next: nextPageLink("/v1/traces", req.query, page.nextCursor) },
    });
  });

  router.get("/v1/traces/:traceId", async (req: Request<{ traceId: string }>, res: Response) => {
    const traceId = parseTraceId(req.params.traceId);
    const trace = await reader.getTrace(traceId);
    if (!trace) throw notFound("trace", traceId);
    res.json({ summary: trace.summary, tree: trace.tree, anomalies: trace.anomalies, links: links(traceId) });
  });

  router.get("/v1/traces/:traceId/replay", async (req: Request<{ traceId: string }>, res: Response) => {
    const traceId = parseTraceId(req.params.traceId);
    const trace = await reader.getTrace(traceId);
    if (!trace) throw notFound("trace", traceId);
    res.type("text/plain; charset=utf-8").send(reader.renderReplay(trace));
  });

  router.get("/v1/anomalies", async (req: Request, res: Response) => {
    const anomalies = await reader.listAnomalies(given(AnomaliesQuery.parse(req.query)));
    res.json({ anomalies: anomalies.map((a) => ({ ...a, links: links(a.traceId) })) });
  });

  router.get("/v1/stats/costs", async (req: Request, res: Response) => {
    const q = CostsQuery.parse(req.query);
    const until = q.until ?? Date.now();
    const since = q.since ?? until - DAY_MS;
    const stats = await reader.costStats({ since, until, kind: q.kind ?? "research" });
    res.json({
      ...stats,
      since: new Date(stats.since).toISOString(),
      until: new Date(stats.until).toISOString(),
      sinceMs: stats.since,
      untilMs: stats.until,
    });
  });

  return router;
}
