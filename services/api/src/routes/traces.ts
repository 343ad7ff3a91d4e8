import { Router, type Request, type Response } from "express";
import { z } from "zod";
import {
  AnomalyTypeSchema,
  InvalidCursorError,
  jaegerTraceUrl,
  TRACE_ID_RE,
  TRACE_STATUSES,
  type TraceFilter,
  type TraceListItem,
  type TraceReader,
} from "@tracelane/trace-store";
import { HttpError, notFound } from "../http/errors.js";

export interface TracesRouterDeps {
  reader: TraceReader;
  /** Public Jaeger UI base URL (JAEGER_UI_URL); responses link each trace to it when set. */
  jaegerUiUrl?: string;
}

const DAY_MS = 24 * 3600 * 1000;

/**
 * One query parameter: a string given at most once ("" counts as absent), then parsed by `parse`,
 * which reports problems on `ctx` and returns z.NEVER.
 */
const param = <T>(parse: (v: string, ctx: z.RefinementCtx) => T) =>
  z
    .unknown()
    .transform((v, ctx): T | undefined => {
      if (v === undefined || v === "") return undefined;
      if (Array.isArray(v)) {
        ctx.addIssue({ code: "custom", message: `must be given once (got ${v.length} values)` });
        return z.NEVER;
      }
      if (typeof v !== "string") {
        ctx.addIssue({ code: "custom", message: "must be a single plain value" });
        return z.NEVER;
      }
      return parse(v, ctx);
    })
    .optional();

const shown = (v: string) => JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v);

/**
 * ISO 8601 as people write it: a date (UTC midnight) or a date-time with Z or an offset. A time
 * without an offset is refused: the server's time zone is not the caller's. Date.parse alone would
 * also take "June 1" or "1/2/3".
 */
const ISO_TIME = /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2}))?$/i;
const EPOCH_MS = /^\d{1,16}$/;

/** A `since`/`until`: ISO 8601 or epoch milliseconds, as epoch milliseconds. */
function parseTime(v: string): number | undefined {
  if (EPOCH_MS.test(v)) return Number(v);
  if (!ISO_TIME.test(v)) return undefined;
  const ms = Date.parse(v);
  // V8 rolls 2025-02-30 over to March 2; a date that does not exist is a typo.
  const day = v.slice(0, 10);
  return Number.isNaN(ms) || new Date(Date.parse(day)).toISOString().slice(0, 10) !== day ? undefined : ms;
}

const timeParam = () =>
  param((v, ctx) => {
    const ms = parseTime(v);
    if (ms === undefined) {
      ctx.addIssue({
        code: "custom",
        message: `must be an ISO 8601 time such as 2025-06-01T12:00:00Z (or 2025-06-01) or epoch milliseconds such as 1748779200000 (got ${shown(v)})`,
      });
      return z.NEVER;
    }
    return ms;
  });

const numberParam = (what: string, opts: { int?: boolean; min?: number; max?: number } = {}) =>
  param((v, ctx) => {
    const n = Number(v);
    const ok =
      v.trim() !== "" &&
      Number.isFinite(n) &&
      (!opts.int || Number.isInteger(n)) &&
      (opts.min === undefined || n >= opts.min) &&
      (opts.max === undefined || n <= opts.max);
    if (!ok) {
      ctx.addIssue({ code: "custom", message: `must be ${what} (got ${shown(v)})` });
      return z.NEVER;
    }
    return n;
  });

const enumParam = <T extends string>(values: readonly T[]) =>
  param((v, ctx) => {
    if ((values as readonly string[]).includes(v)) return v as T;
    ctx.addIssue({ code: "custom", message: `must be one of ${values.join(", ")} (got ${shown(v)})` });
    return z.NEVER;
  });

const stringParam = (max: number) =>
  param((v, ctx) => {
    if (v.length <= max) return v;
    ctx.addIssue({ code: "custom", message: `must be at most ${max} characters` });
    return z.NEVER;
  });

const windowCheck = (q: { since?: number | undefined; until?: number | undefined }, ctx: z.RefinementCtx) => {
  if (q.since !== undefined && q.until !== undefined && q.since > q.until) {
    ctx.addIssue({ code: "custom", path: ["since"], message: "must not be after until" });
  }
};

const tracesShape = {
  since: timeParam(),
  until: timeParam(),
  minCostUsd: numberParam("a number of USD >= 0", { min: 0 }),
  minDurationMs: numberParam("a number of milliseconds >= 0", { min: 0 }),
  anomaly: enumParam(AnomalyTypeSchema.options),
  status: enumParam(TRACE_STATUSES),
  model: stringParam(200),
  sort: enumParam(["start", "cost", "duration"] as const),
  limit: numberParam("an integer from 1 to 500", { int: true, min: 1, max: 500 }),
  cursor: stringParam(1_000),
};
const TracesQuery = z.object(tracesShape).strict().superRefine(windowCheck);

const anomaliesShape = {
  since: timeParam(),
  type: enumParam(AnomalyTypeSchema.options),
  limit: numberParam("an integer from 1 to 1000", { int: true, min: 1, max: 1_000 }),
};
const AnomaliesQuery = z.object(anomaliesShape).strict();

const costsShape = { since: timeParam(), until: timeParam() };
const CostsQuery = z.object(costsShape).strict().superRefine(windowCheck);

/** zod issues -> 400 invalid_query whose message names each bad parameter. */
function invalidQuery(error: z.ZodError, allowed: readonly string[]): HttpError {
  const problems: { parameter: string; message: string }[] = [];
  for (const issue of error.issues) {
    if (issue.code === "unrecognized_keys") {
      for (const key of issue.keys) {
        problems.push({ parameter: key, message: `unknown query parameter; allowed: ${allowed.join(", ")}` });
      }
    } else {
      problems.push({ parameter: issue.path.map(String).join(".") || "query", message: issue.message });
    }
  }
  const summary = problems.map((p) => `${p.parameter}: ${p.message}`).join("; ");
  return new HttpError(400, "invalid_query", `Invalid query parameters: ${summary}`, problems);
}

function parseQuery<S extends z.ZodType>(schema: S, query: unknown, allowed: readonly string[]): z.infer<S> {
  const result = schema.safeParse(query ?? {});
  if (!result.success) throw invalidQuery(result.error, allowed);
  return result.data;
}

const TRACES_PARAMS = Object.keys(tracesShape);
const ANOMALIES_PARAMS = Object.keys(anomaliesShape);
const COSTS_PARAMS = Object.keys(costsShape);

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
 *   GET /v1/traces                   list + filters (since, until, minCostUsd, minDurationMs, anomaly, status, model, sort, limit, cursor)
 *   GET /v1/traces/:traceId          summary, span tree, anomalies, links (Jaeger when configured)
 *   GET /v1/traces/:traceId/replay   plain-text replay
 *   GET /v1/anomalies                newest first (since, type, limit)
 *   GET /v1/stats/costs              per stage and per model cost, tokens, latency, error rate (since, until; default last 24 h)
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
    const q = parseQuery(TracesQuery, req.query, TRACES_PARAMS);
    const filter = Object.fromEntries(Object.entries(q).filter(([, v]) => v !== undefined)) as TraceFilter;
    let page;
    try {
      page = await reader.listTraces(filter);
    } catch (err) {
      if (err instanceof InvalidCursorError) {
        throw new HttpError(400, "invalid_query", `Invalid query parameters: cursor: ${err.message}`, [
          { parameter: "cursor", message: err.message },
        ]);
      }
      throw err;
    }
    let next: string | null = null;
    if (page.nextCursor) {
      const params = new URLSearchParams();
      for (const [k, v] of Object.entries(req.query)) if (k !== "cursor" && typeof v === "string") params.set(k, v);
      params.set("cursor", page.nextCursor);
      next = `/v1/traces?${params.toString()}`;
    }
    res.json({ traces: page.traces.map(listItem), nextCursor: page.nextCursor ?? null, links: { next } });
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
    const q = parseQuery(AnomaliesQuery, req.query, ANOMALIES_PARAMS);
    const anomalies = await reader.listAnomalies({
      ...(q.since !== undefined ? { since: q.since } : {}),
      ...(q.type !== undefined ? { type: q.type } : {}),
      ...(q.limit !== undefined ? { limit: q.limit } : {}),
    });
    res.json({ anomalies: anomalies.map((a) => ({ ...a, links: links(a.traceId) })) });
  });

  router.get("/v1/stats/costs", async (req: Request, res: Response) => {
    const q = parseQuery(CostsQuery, req.query, COSTS_PARAMS);
    const until = q.until ?? Date.now();
    const since = q.since ?? until - DAY_MS;
    const stats = await reader.costStats({ since, until });
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
