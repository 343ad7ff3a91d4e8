import { Router, type Request, type Response } from "express";
import { jaegerTraceUrl, type TraceListItem, type TraceReader } from "@tracelane/trace-store";
import { AnomaliesQuery, CostsQuery, ROUTES, TraceIdParamSchema, TracesQuery } from "../api-spec/routes.js";
import { HttpError, notFound } from "../http/errors.js";
import { given, nextPageLink, withCursor } from "../http/query.js";

export interface TracesRouterDeps {
  reader: TraceReader;
  /** Public Jaeger UI base URL (JAEGER_UI_URL); responses link each trace to it when set. */
  jaegerUiUrl?: string;
}

const DAY_MS = 24 * 3600 * 1000;

function parseTraceId(raw: string): string {
  if (!TraceIdParamSchema.safeParse(raw).success) {
    throw new HttpError(
      400,
      "invalid_trace_id",
      `"${raw.slice(0, 80)}" is not a trace id: expected 32 hexadecimal characters (W3C trace id).`,
      {
        parameter: "traceId",
      },
    );
  }
  return raw.toLowerCase();
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

  router.get(ROUTES.listTraces.path, async (req: Request, res: Response) => {
    const q = TracesQuery.parse(req.query);
    const page = await withCursor(() => reader.listTraces({ ...given(q), kind: q.kind ?? "research" }));
    res.json({
      traces: page.traces.map(listItem),
      nextCursor: page.nextCursor ?? null,
      links: { next: nextPageLink(ROUTES.listTraces.path, req.query, page.nextCursor) },
    });
  });

  router.get(ROUTES.getTrace.path, async (req: Request<{ traceId: string }>, res: Response) => {
    const traceId = parseTraceId(req.params.traceId);
    const trace = await reader.getTrace(traceId);
    if (!trace) throw notFound("trace", traceId);
    res.json({ summary: trace.summary, tree: trace.tree, anomalies: trace.anomalies, links: links(traceId) });
  });

  router.get(ROUTES.traceReplay.path, async (req: Request<{ traceId: string }>, res: Response) => {
    const traceId = parseTraceId(req.params.traceId);
    const trace = await reader.getTrace(traceId);
    if (!trace) throw notFound("trace", traceId);
    res.type("text/plain; charset=utf-8").send(reader.renderReplay(trace));
  });

  router.get(ROUTES.listAnomalies.path, async (req: Request, res: Response) => {
    const anomalies = await reader.listAnomalies(given(AnomaliesQuery.parse(req.query)));
    res.json({ anomalies: anomalies.map((a) => ({ ...a, links: links(a.traceId) })) });
  });

  router.get(ROUTES.costStats.path, async (req: Request, res: Response) => {
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
