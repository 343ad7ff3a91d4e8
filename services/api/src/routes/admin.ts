import { Router, type Request, type Response } from "express";
import type { Queue } from "bullmq";
import { PriceTable } from "@tracelane/pricing";
import { newRepriceId, RepriceIdSchema, RepriceJobSchema, type RepriceJob, type RepriceProgress } from "@tracelane/queue-contract";
import { withPublishSpan } from "@tracelane/tracing/messaging";
import { RepriceRequestSchema } from "../api-spec/admin-schemas.js";
import { ROUTES } from "../api-spec/routes.js";
import { requireAdmin } from "../auth/middleware.js";
import { HttpError, notFound } from "../http/errors.js";
import { parseBody } from "../validation.js";

export interface AdminRouterDeps {
  /** The reprice queue (queue-contract's REPRICE_QUEUE), consumed by the trace-collector. */
  reprice: Queue<RepriceJob, RepriceProgress>;
}

const ALLOWED = { "": ["since", "until", "priceTable"], priceTable: ["models", "$comment"] };

const iso = (ms: number) => new Date(ms).toISOString();

/**
 * Admin routes (admin API keys only; open without keys, like the rest):
 *   POST /v1/admin/reprice      re-price the stored traces of a window: 202 with the reprice id, the work is the trace-collector's
 *   GET  /v1/admin/reprice/:id  its state and progress
 * The api validates and hands the work over: the trace-collector is the only writer of trace data.
 */
export function createAdminRouter(deps: AdminRouterDeps): Router {
  const router = Router();
  const admin = requireAdmin("Re-pricing (/v1/admin/reprice)");

  router.post(ROUTES.createReprice.path, admin, async (req: Request, res: Response) => {
    const body = parseBody(RepriceRequestSchema, req.body, ALLOWED);
    if (body.priceTable) {
      // The schema checked each field; the table itself also refuses a name listed for two models.
      try {
        PriceTable.parse(body.priceTable, "priceTable");
      } catch (err) {
        throw new HttpError(400, "invalid_request", `The request body is invalid: ${(err as Error).message}`, [
          { path: "priceTable.models", message: (err as Error).message },
        ]);
      }
    }
    const until = body.until ?? Date.now();
    if (until < body.since) {
      throw new HttpError(400, "invalid_request", "The request body is invalid: until: must not be before since (until defaults to now)", [
        { path: "until", message: "must not be before since (until defaults to now)" },
      ]);
    }
    const id = newRepriceId();
    await withPublishSpan({ queue: deps.reprice.name, messageId: id }, async (carrier) => {
      const data = RepriceJobSchema.parse({
        since: body.since,
        until,
        ...(body.priceTable ? { priceTable: body.priceTable } : {}),
        trace: carrier,
        requestedAt: Date.now(),
      });
      await deps.reprice.add("reprice", data, { jobId: id });
    });
    const self = `/v1/admin/reprice/${id}`;
    res
      .status(202)
      .location(self)
      .json({ id, state: "queued", since: iso(body.since), until: iso(until), links: { self } });
  });

  router.get(ROUTES.getReprice.path, admin, async (req: Request<{ id: string }>, res: Response) => {
    const id = req.params.id;
    if (!RepriceIdSchema.safeParse(id).success) {
      throw new HttpError(
        400,
        "invalid_request",
        `"${id.slice(0, 80)}" is not a reprice id: expected reprice-<uuid>, as POST /v1/admin/reprice returned it.`,
        [{ path: "params.id", message: "expected reprice-<uuid>" }],
      );
    }
    const job = await deps.reprice.getJob(id);
    if (!job) throw notFound("reprice", id);
    const state = await job.getState();
    const done = state === "completed" ? (job.returnvalue as RepriceProgress | null) : null;
    const progress = done ?? (typeof job.progress === "object" ? (job.progress as Partial<RepriceProgress>) : {});
    const data = job.data;
    res.json({
      id,
      state: state === "completed" ? "completed" : state === "failed" ? "failed" : state === "active" ? "running" : "queued",
      since: iso(data.since),
      until: iso(data.until),
      sinceMs: data.since,
      untilMs: data.until,
      inlinePriceTable: data.priceTable !== undefined,
      tracesDone: progress.tracesDone ?? 0,
      tracesTotal: progress.tracesTotal ?? 0,
      tracesChanged: progress.tracesChanged ?? 0,
      tracesSkipped: progress.tracesSkipped ?? 0,
      callsRepriced: progress.callsRepriced ?? 0,
      nowPriced: progress.nowPriced ?? 0,
      nowUnpriced: progress.nowUnpriced ?? 0,
      researchesRepriced: progress.researchesRepriced ?? 0,
      costBeforeUsd: progress.costBeforeUsd ?? 0,
      costAfterUsd: progress.costAfterUsd ?? 0,
      priceVersion: progress.priceVersion ?? null,
      attempts: job.attemptsStarted,
      ...(state === "failed" && job.failedReason ? { error: job.failedReason } : {}),
      links: { self: `/v1/admin/reprice/${id}` },
    });
  });

  return router;
}
