import { Router, type Request, type Response } from "express";
import type { ResearchStore } from "@tracelane/research-store";
import { loadPriceTable, type PriceSource } from "@tracelane/pricing";
import { jaegerTraceUrl, type TraceKind, type TraceListItem, type TraceReader, type TraceVisibility } from "@tracelane/trace-store";
import { callerOf, listOwner, mayAccess } from "../auth/caller.js";
import { AnomaliesQuery, CostsQuery, ROUTES, TraceIdParamSchema, TracesQuery, WhatIfQuery, WhatIfWindowQuery } from "../api-spec/routes.js";
import { HttpError, notFound } from "../http/errors.js";
import { given, nextPageLink, withCursor } from "../http/query.js";
import { parseSwaps, priceSummaries, pricerFor, WHAT_IF_MAX_TRACES_DEFAULT, whatIfOverWindow } from "../what-if.js";

export interface TracesRouterDeps {
  reader: TraceReader;
  /** Public Jaeger UI base URL (JAEGER_UI_URL); responses link each trace to it when set. */
  jaegerUiUrl?: string;
  /**
   * Who owns each trace (the research it belongs to): a member key sees only its own researches'
   * traces. Without it a member sees none; an admin, or any caller when the api runs without keys, sees all.
   */
  owners?: Pick<ResearchStore, "traceOwners"> | undefined;
  /** What-if swaps price the recorded tokens with this table (the workers' TRACELANE_PRICE_TABLE). */
  prices?: PriceSource;
  /** The pipeline's stages: what a swap may name. */
  stages?: readonly string[];
  /** Most traces one GET /v1/stats/what-if reads (TRACELANE_WHAT_IF_MAX_TRACES); beyond it the answer says it is truncated. */
  whatIfMaxTraces?: number;
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
 *   GET /v1/traces/:traceId/what-if  its calls priced with some stages on other models (swap=<stage>:<model>)
 *   GET /v1/anomalies                newest first (since, type, limit)
 *   GET /v1/stats/costs              per stage and per model cost, tokens, latency, error rate (kind, since, until; default last 24 h)
 *   GET /v1/stats/what-if            every trace of a window priced with some stages on other models (swap, kind, since, until)
 * The list and the stats count research traces unless kind=all (admin keys only). A member key reads only
 * the traces of its own researches: everything else is skipped in lists, anomalies and stats, and a 404 by id.
 */
export function createTracesRouter(deps: TracesRouterDeps): Router {
  const { reader } = deps;
  const prices = deps.prices ?? loadPriceTable();
  const router = Router();

  /** The traces this request's caller may see; undefined: all of them (an admin, or no keys configured). */
  const visibility = (res: Response): TraceVisibility | undefined => {
    const caller = callerOf(res);
    if (listOwner(caller) === undefined) return undefined;
    return async (traceIds) => {
      const owners = deps.owners ? await deps.owners.traceOwners(traceIds) : [];
      return traceIds.map((_, i) => owners[i] !== undefined && mayAccess(caller, owners[i].owner));
    };
  };
  const scopeOf = (res: Response) => ({ visible: visibility(res) });
  /** A trace another key's research owns is answered as a missing one (404, same body). */
  const ensureVisible = async (traceId: string, res: Response) => {
    const visible = visibility(res);
    if (visible && !(await visible([traceId]))[0]) throw notFound("trace", traceId);
  };
  /** kind=all adds traces that belong to no research (other OTLP clients): an admin's view. */
  const checkKind = (kind: TraceKind, res: Response) => {
    if (kind === "all" && visibility(res) !== undefined) {
      throw new HttpError(
        403,
        "forbidden",
        "kind=all includes traces that belong to no research and needs an admin API key; a member key reads kind=research (the default): the traces of its own researches.",
        { parameter: "kind" },
      );
    }
  };

  const links = (traceId: string) => ({
    self: `/v1/traces/${traceId}`,
    replay: `/v1/traces/${traceId}/replay`,
    ...(deps.jaegerUiUrl ? { jaeger: jaegerTraceUrl(deps.jaegerUiUrl, traceId) } : {}),
  });
  // The compact list form: per-call details stay on GET /v1/traces/:traceId.
  const listItem = ({ calls: _calls, ...summary }: TraceListItem) => ({ ...summary, links: links(summary.traceId) });

  router.get(ROUTES.listTraces.path, async (req: Request, res: Response) => {
    const q = TracesQuery.parse(req.query);
    checkKind(q.kind ?? "research", res);
    const page = await withCursor(() => reader.listTraces({ ...given(q), kind: q.kind ?? "research" }, scopeOf(res)));
    res.json({
      traces: page.traces.map(listItem),
      nextCursor: page.nextCursor ?? null,
      links: { next: nextPageLink(ROUTES.listTraces.path, req.query, page.nextCursor) },
    });
  });

  router.get(ROUTES.getTrace.path, async (req: Request<{ traceId: string }>, res: Response) => {
    const traceId = parseTraceId(req.params.traceId);
    await ensureVisible(traceId, res);
    const trace = await reader.getTrace(traceId);
    if (!trace) throw notFound("trace", traceId);
    res.json({ summary: trace.summary, tree: trace.tree, anomalies: trace.anomalies, links: links(traceId) });
  });

  router.get(ROUTES.traceReplay.path, async (req: Request<{ traceId: string }>, res: Response) => {
    const traceId = parseTraceId(req.params.traceId);
    await ensureVisible(traceId, res);
    const trace = await reader.getTrace(traceId);
    if (!trace) throw notFound("trace", traceId);
    res.type("text/plain; charset=utf-8").send(reader.renderReplay(trace));
  });

  router.get(ROUTES.traceWhatIf.path, async (req: Request<{ traceId: string }>, res: Response) => {
    const traceId = parseTraceId(req.params.traceId);
    const swaps = parseSwaps(WhatIfQuery.parse(req.query).swap ?? [], deps.stages ?? []);
    const pricer = pricerFor(swaps, prices);
    await ensureVisible(traceId, res);
    const trace = await reader.getTrace(traceId);
    if (!trace) throw notFound("trace", traceId);
    await priceSummaries(pricer, reader, [trace.summary]);
    res.json({ traceId, swaps, ...pricer.result(), links: links(traceId) });
  });

  router.get(ROUTES.windowWhatIf.path, async (req: Request, res: Response) => {
    const q = WhatIfWindowQuery.parse(req.query);
    const swaps = parseSwaps(q.swap ?? [], deps.stages ?? []);
    const pricer = pricerFor(swaps, prices);
    const kind = q.kind ?? "research";
    checkKind(kind, res);
    const until = q.until ?? Date.now();
    const since = q.since ?? until - DAY_MS;
    const answer = await whatIfOverWindow(
      reader,
      pricer,
      { since, until, kind },
      scopeOf(res),
      deps.whatIfMaxTraces ?? WHAT_IF_MAX_TRACES_DEFAULT,
    );
    res.json({
      since: new Date(since).toISOString(),
      until: new Date(until).toISOString(),
      sinceMs: since,
      untilMs: until,
      kind,
      swaps,
      ...answer,
    });
  });

  router.get(ROUTES.listAnomalies.path, async (req: Request, res: Response) => {
    const anomalies = await reader.listAnomalies(given(AnomaliesQuery.parse(req.query)), scopeOf(res));
    res.json({ anomalies: anomalies.map((a) => ({ ...a, links: links(a.traceId) })) });
  });

  router.get(ROUTES.costStats.path, async (req: Request, res: Response) => {
    const q = CostsQuery.parse(req.query);
    const until = q.until ?? Date.now();
    const since = q.since ?? until - DAY_MS;
    checkKind(q.kind ?? "research", res);
    const stats = await reader.costStats({ since, until, kind: q.kind ?? "research" }, scopeOf(res));
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
