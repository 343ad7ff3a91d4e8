import type { IncomingMessage, ServerResponse } from "node:http";
import {
  ATTR_QUEUE_STATE,
  ATTR_REJECTION_REASON,
  ATTR_RESEARCH_STATUS,
  createServiceMetrics,
  METRICS,
  type TracingStatsLike,
} from "@tracelane/metrics";
import { ATTR_STAGE } from "@tracelane/pipeline";
import type { StageQueues } from "@tracelane/queue-contract";
import type { ResearchStore } from "@tracelane/research-store";
import {
  ATTR_HTTP_REQUEST_METHOD,
  ATTR_HTTP_RESPONSE_STATUS_CODE,
  ATTR_HTTP_ROUTE,
  ATTR_MESSAGING_DESTINATION_NAME,
} from "@tracelane/tracing/attributes";
import type { CountRejection } from "./limits/rejections.js";

/** The BullMQ states a queue's depth is reported in. */
const QUEUE_STATES = ["waiting", "active", "delayed", "failed"] as const;

/** Express's fields, read when present. */
type RoutedRequest = IncomingMessage & { baseUrl?: string; route?: { path?: unknown } };

export interface ApiMetrics {
  /** Times every request; mount before the routes. */
  middleware(req: IncomingMessage, res: ServerResponse, next: () => void): void;
  /** GET /metrics. */
  handler(req: IncomingMessage, res: ServerResponse): void;
  /** Count a request turned away (rate limit, backpressure, stream cap, slow client). */
  rejected: CountRejection;
}

/**
 * The api's /metrics: request duration by route pattern and status, and two readings taken at
 * scrape time — queue depth per stage (BullMQ getJobCounts) and researches per status (the research
 * store's status indexes). Those two are store-wide: every api replica reports the same figures, so
 * dashboards take max() over replicas, not sum(). A counter of final statuses incremented by the api
 * would be wrong here: the workers make those transitions, the api never sees most of them.
 */
export function createApiMetrics(o: {
  queues: StageQueues;
  store: ResearchStore;
  tracingStats?: () => TracingStatsLike;
  priceVersion?: () => string;
}): ApiMetrics {
  const metrics = createServiceMetrics({
    ...(o.tracingStats ? { tracingStats: o.tracingStats } : {}),
    ...(o.priceVersion ? { priceVersion: o.priceVersion } : {}),
  });
  const duration = metrics.histogram(METRICS.httpDuration);
  const rejections = metrics.counter(METRICS.rejections);

  metrics.gaugeFrom(METRICS.queueDepth, async () => {
    const stages = o.queues.pipeline.stages;
    // One series per queue shard (TRACELANE_QUEUE_SHARDS): sum by stage for the stage's depth.
    const shards = stages.flatMap((s) => o.queues.shardsOf(s.stage).map((queue) => ({ stage: s.stage, queue })));
    const counts = await Promise.all(shards.map(({ queue }) => queue.getJobCounts(...QUEUE_STATES)));
    return shards.flatMap(({ stage, queue }, i) =>
      QUEUE_STATES.map(
        (state) =>
          [
            { [ATTR_MESSAGING_DESTINATION_NAME]: queue.name, [ATTR_STAGE]: stage, [ATTR_QUEUE_STATE]: state },
            counts[i]![state] ?? 0,
          ] as const,
      ),
    );
  });
  metrics.gaugeFrom(METRICS.researches, async () =>
    Object.entries(await o.store.countByStatus()).map(([status, n]) => [{ [ATTR_RESEARCH_STATUS]: status }, n] as const),
  );

  return {
    middleware(req, res, next) {
      const start = performance.now();
      res.once("close", () => {
        // The route pattern Express matched (bounded), never the raw path; none for a 404.
        const path = (req as RoutedRequest).route?.path;
        const route = typeof path === "string" ? `${(req as RoutedRequest).baseUrl ?? ""}${path}` || "/" : undefined;
        try {
          duration.observe(
            {
              [ATTR_HTTP_REQUEST_METHOD]: (req.method ?? "GET").toUpperCase(),
              [ATTR_HTTP_ROUTE]: route,
              [ATTR_HTTP_RESPONSE_STATUS_CODE]: res.statusCode,
            },
            (performance.now() - start) / 1000,
          );
        } catch {
          // A listener that throws would take the process down; a lost observation is only a lost sample.
        }
      });
      next();
    },
    handler: metrics.handler,
    rejected: (reason) => rejections.add({ [ATTR_REJECTION_REASON]: reason }),
  };
}
