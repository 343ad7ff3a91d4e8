import { randomUUID } from "node:crypto";
import { Router, type Request, type Response } from "express";
import { trace } from "@opentelemetry/api";
import { ATTR_OWNER, ATTR_QUERY_CHARS } from "@tracelane/pipeline";
import type { ModelPolicy } from "@tracelane/pricing";
import type { StageQueues } from "@tracelane/queue-contract";
import type { CreateResearchInput, CreateResult, ResearchStore, ResearchView } from "@tracelane/research-store";
import type { TraceReader } from "@tracelane/trace-store";
import { currentTraceId, type Logger } from "@tracelane/tracing";
import type { AppConfig } from "../env.js";
import { callerOf, limitSubject, listOwner, mayAccess } from "../auth/caller.js";
import { HttpError, isConnectionError, notFound, RetryLaterError, UnavailableError, withTimeout } from "../http/errors.js";
import { given, nextPageLink, withCursor } from "../http/query.js";
import { ResearchListQuery, ROUTES } from "../api-spec/routes.js";
import { listResearch } from "../research-list.js";
import type { QueueDepth, QueueDepthGate } from "../limits/queue-depth.js";
import type { CountRejection } from "../limits/rejections.js";
import type { SseSlots } from "../limits/sse-slots.js";
import type { Estimate, ResearchForecaster } from "../forecast.js";
import { dailySpendRefusal, estimateRefusal, researchOptions } from "../spend-policy.js";
import { streamResearchEvents, type SseStreams } from "../sse.js";
import { parseIdempotencyKey, parseLastEventId, parseResearchId, parseResearchRequest } from "../validation.js";

export interface ResearchRouterDeps {
  store: ResearchStore;
  queues: StageQueues;
  config: AppConfig;
  logger: Logger;
  streams: SseStreams;
  /** For the anomaly counts of GET /v1/research rows (0 without it). */
  traces?: Pick<TraceReader, "anomalyCounts"> | undefined;
  /** Backpressure (MAX_QUEUE_DEPTH): while full, POST /v1/research creates nothing (503 queue_full). */
  queueDepth?: QueueDepthGate | undefined;
  /** Caps on open event streams (MAX_SSE_STREAMS_PER_KEY, MAX_SSE_STREAMS). */
  sseSlots?: SseSlots | undefined;
  countRejection?: CountRejection | undefined;
  /** Which models each stage may run (options.models outside it: 400 model_not_allowed); none: any. */
  modelPolicy?: ModelPolicy | undefined;
  /** The submit-time cost estimate (and its 422 estimate_over_budget); none: no estimate in the answer. */
  forecaster?: Pick<ResearchForecaster, "estimate"> | undefined;
}

/** Retry-After of a 503 queue_full: the workers need a while to drain a full queue. */
const QUEUE_FULL_RETRY_AFTER_SECONDS = 10;

/** 32 URL-safe characters; no ':' since the id is part of BullMQ job ids. */
export const newResearchId = () => randomUUID().replaceAll("-", "");

const JSON_TYPES = ["application/json", "application/*+json"];

export function researchLinks(id: string, traceId: string | null) {
  return {
    self: `/v1/research/${id}`,
    events: `/v1/research/${id}/events`,
    ...(traceId ? { trace: `/v1/traces/${traceId}`, ui: `/ui/traces/${traceId}` } : {}),
  };
}

const withLinks = (view: ResearchView) => ({ ...view, links: researchLinks(view.id, view.traceId) });

export function createResearchRouter(deps: ResearchRouterDeps): Router {
  const { store, queues, config, logger } = deps;
  const router = Router();

  /** Enqueue the first stage inside the request's span (the PRODUCER span becomes its child). */
  const publishAnalysis = (id: string) =>
    withTimeout(queues.publish(id, queues.firstStage), config.enqueueTimeoutMs, `enqueueing the ${queues.firstStage} job`);

  const loadView = async (id: string): Promise<ResearchView> => {
    const view = await store.get(id);
    if (!view) throw notFound("research", id);
    return view;
  };

  /** Another member's research is answered exactly as a missing one (404, same body): its id reveals nothing. */
  const ensureVisible = async (id: string, res: Response): Promise<void> => {
    const found = await store.ownerOf(id);
    if (!found || !mayAccess(callerOf(res), found.owner)) throw notFound("research", id);
  };

  /**
   * A refused request (over the spend cap, a full pipeline) creates nothing, but a replay (same Idempotency-Key and
   * body) of a research that exists is still answered. `refusal` runs only when there is nothing to replay.
   */
  const replayOr = async (
    refusal: () => Error,
    request: Pick<CreateResearchInput, "query" | "options"> & { idempotencyKey: string | undefined; owner: string | undefined },
  ): Promise<CreateResult> => {
    const { idempotencyKey, owner, ...body } = request;
    const found =
      idempotencyKey !== undefined
        ? await store.findIdempotent({ idempotencyKey, ...(owner !== undefined ? { owner } : {}), ...body })
        : undefined;
    if (found) return found;
    throw refusal();
  };

  const queueFull = (depth: Extract<QueueDepth, { full: true }>) => () => {
    deps.countRejection?.("queue_full");
    return new RetryLaterError(
      503,
      "queue_full",
      `The research pipeline is full: the ${depth.stage} queue has ${depth.waiting} jobs waiting (MAX_QUEUE_DEPTH). Nothing was created; retry in ${QUEUE_FULL_RETRY_AFTER_SECONDS} s.`,
      QUEUE_FULL_RETRY_AFTER_SECONDS,
      { stage: depth.stage, waiting: depth.waiting },
    );
  };

  router.post(ROUTES.createResearch.path, async (req: Request, res: Response) => {
    if (!req.is(JSON_TYPES)) {
      const sent = req.get("Content-Type");
      throw new HttpError(
        415,
        "unsupported_media_type",
        `${sent ? `Content-Type "${sent}" is not supported` : "The request has no JSON body"}. Send a JSON body with Content-Type: application/json.`,
        { expected: "application/json", ...(sent ? { received: sent } : {}) },
      );
    }
    const idempotencyKey = parseIdempotencyKey(req.headersDistinct["idempotency-key"]);
    const body = parseResearchRequest(req.body, config.maxQueryChars, queues.pipeline);
    const options = researchOptions(body.options, { modelPolicy: deps.modelPolicy, defaultMaxCostUsd: config.defaultMaxCostUsd });
    const spendSubject = limitSubject(req, res);
    const overSpendCap = await dailySpendRefusal(store, spendSubject, config.dailySpendCapUsd);
    const estimate: Estimate | undefined = await deps.forecaster?.estimate(body.query, options.models);
    const overEstimate = estimate && estimateRefusal(estimate, options);
    const withEstimate = estimate ? { estimate } : {};

    const id = newResearchId();
    // The research belongs to the key that created it (none when the api runs without keys).
    const owner = callerOf(res)?.id;
    if (owner !== undefined) trace.getActiveSpan()?.setAttribute(ATTR_OWNER, owner); // the collector's OTLP ownership check
    trace.getActiveSpan()?.setAttribute(ATTR_QUERY_CHARS, body.query.length); // the forecast's first-stage input
    // The request's trace (continued from the caller's traceparent when there is one).
    const traceId = currentTraceId() ?? null;
    const depth: QueueDepth = (await deps.queueDepth?.check()) ?? { full: false };
    const created = overSpendCap
      ? await replayOr(() => overSpendCap, { idempotencyKey, owner, query: body.query, options })
      : overEstimate
        ? await replayOr(() => overEstimate, { idempotencyKey, owner, query: body.query, options })
        : depth.full
          ? await replayOr(queueFull(depth), { idempotencyKey, owner, query: body.query, options })
          : await store.create({
              id,
              query: body.query,
              options,
              traceId,
              ...(owner !== undefined ? { owner } : {}),
              spendSubject,
              ...(idempotencyKey !== undefined ? { idempotencyKey } : {}),
            });

    if (created.outcome === "conflict") {
      throw new HttpError(
        409,
        "idempotency_conflict",
        "This Idempotency-Key was already used for a request with a different body. Use a new key for a new request, or resend the original body.",
        { idempotencyKey },
      );
    }

    if (created.outcome === "existing") {
      const view = await loadView(created.id);
      // Still queued: the first request may have died between create and enqueue. The job id is
      // deterministic, so publishing again never creates a second job.
      if (view.status === "queued") {
        try {
          await publishAnalysis(view.id);
        } catch (err) {
          if (!isConnectionError(err)) throw err;
          throw new UnavailableError(
            "The job queue is unreachable right now. Retry the same request (same Idempotency-Key) in a few seconds.",
          );
        }
      }
      res
        .status(200)
        .set("Idempotent-Replayed", "true")
        .location(`/v1/research/${view.id}`)
        .json({ id: view.id, status: view.status, traceId: view.traceId, links: researchLinks(view.id, view.traceId), ...withEstimate });
      return;
    }

    let status: ResearchView["status"] = "queued";
    try {
      await publishAnalysis(id);
    } catch (err) {
      // Nothing was enqueued: fail the record so no one waits for it, then answer.
      const marked = await store
        .failed(id, {
          stage: queues.firstStage,
          type: "enqueue_failed",
          message: `The research could not be queued: ${err instanceof Error ? err.message : String(err)}`.slice(0, 500),
        })
        .catch(() => undefined);
      if (marked === "applied") status = "failed";
      if (!isConnectionError(err)) throw err;
      logger.warn({ err: { name: (err as Error).name, message: (err as Error).message }, researchId: id }, "enqueue failed");
      throw new UnavailableError(
        `The research could not be queued because the job queue is unreachable. Retry in a few seconds${
          idempotencyKey !== undefined && status === "failed" ? " with a new Idempotency-Key" : ""
        }.`,
        5,
        { id, status },
      );
    }
    res
      .status(202)
      .location(`/v1/research/${id}`)
      .json({ id, status, traceId, links: researchLinks(id, traceId), ...withEstimate });
  });

  router.get(ROUTES.listResearch.path, async (req: Request, res: Response) => {
    const q = ResearchListQuery.parse(req.query);
    const page = await withCursor(() =>
      listResearch({ store, traces: deps.traces }, { ...given(q), ...given({ owner: listOwner(callerOf(res)) }) }),
    );
    res.json({
      researches: page.researches.map((r) => ({ ...r, links: researchLinks(r.id, r.traceId) })),
      nextCursor: page.nextCursor ?? null,
      links: { next: nextPageLink(ROUTES.listResearch.path, req.query, page.nextCursor) },
    });
  });

  router.get(ROUTES.getResearch.path, async (req: Request<{ id: string }>, res: Response) => {
    const id = parseResearchId(req.params.id);
    const view = await loadView(id);
    if (!mayAccess(callerOf(res), view.owner)) throw notFound("research", id);
    res.json(withLinks(view));
  });

  router.get(ROUTES.researchEvents.path, async (req: Request<{ id: string }>, res: Response) => {
    const id = parseResearchId(req.params.id);
    const afterId = parseLastEventId(
      req.get("Last-Event-ID") ?? (typeof req.query.lastEventId === "string" ? req.query.lastEventId : undefined),
    );
    await ensureVisible(id, res);
    // Taken before the stream opens (over a cap: 429/503), given back when the response closes, however it ends.
    const release = deps.sseSlots?.acquire(limitSubject(req, res), callerOf(res) ? "key" : "address");
    if (release) res.on("close", release);
    await streamResearchEvents(req, res, {
      store,
      streams: deps.streams,
      logger,
      researchId: id,
      afterId,
      pollMs: config.ssePollMs,
      heartbeatMs: config.sseHeartbeatMs,
    });
  });

  router.delete(ROUTES.cancelResearch.path, async (req: Request<{ id: string }>, res: Response) => {
    const id = parseResearchId(req.params.id);
    await ensureVisible(id, res);
    const outcome = await store.cancel(id);
    if (outcome === "missing") throw notFound("research", id);
    if (outcome === "final") {
      const status = await store.status(id);
      throw new HttpError(
        409,
        "already_finished",
        `Research ${id} has already finished with status "${status}"; only queued or running research can be cancelled.`,
        {
          id,
          status,
        },
      );
    }
    // Cancel first, then drop the waiting jobs: a job that starts in between sees the cancelled status.
    await queues.removeWaiting(id);
    const view = await loadView(id);
    res.json(withLinks(view));
  });

  return router;
}
