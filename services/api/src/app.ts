import express, { type Express, type Router } from "express";
import { ApiKeys } from "@tracelane/api-keys";
import { CONSOLE_BASE, createConsoleRouter } from "@tracelane/console";
import type { RedisClient } from "@tracelane/runtime";
import type { Queue } from "bullmq";
import type { RepriceJob, RepriceProgress, StageQueues } from "@tracelane/queue-contract";
import type { ResearchStore } from "@tracelane/research-store";
import type { TraceReader } from "@tracelane/trace-store";
import { httpServerTracing, type Logger } from "@tracelane/tracing";
import { requireAdmin, requireApiKey } from "./auth/middleware.js";
import type { AppConfig } from "./env.js";
import { errorHandler, notFoundRoute } from "./http/error-handler.js";
import { consoleCsp, requestId, securityHeaders } from "./http/response-headers.js";
import { corsFor } from "./http/cors.js";
import { QueueDepthGate } from "./limits/queue-depth.js";
import { requestRateLimit } from "./limits/request-rate-limit.js";
import { SseSlots } from "./limits/sse-slots.js";
import type { ApiMetrics } from "./metrics.js";
import type { ModelPolicy } from "@tracelane/pricing";
import type { ResearchForecaster } from "./forecast.js";
import { traceContextTrust } from "./trace-trust.js";
import { createHealthRouter } from "./routes/health.js";
import { createQueueBoardRouter, QUEUE_BOARD_PATH } from "./routes/queue-board.js";
import { createOpenApiRouter } from "./routes/openapi.js";
import { createResearchRouter } from "./routes/research.js";
import { createAdminRouter } from "./routes/admin.js";
import { SseStreams } from "./sse.js";

export interface AppDeps {
  store: ResearchStore;
  queues: StageQueues;
  /** Fail-fast ("producer") connection, used by /readyz. */
  redis: RedisClient;
  config: AppConfig;
  logger: Logger;
  /** GET /v1/traces... (from routes/traces.ts), mounted when given. */
  traceRouter?: Router;
  /** The trace-collector's store, for the anomaly counts of GET /v1/research rows. */
  traceReader?: Pick<TraceReader, "anomalyCounts">;
  /** Open SSE streams; pass one to end them on shutdown (`streams.closeAll()`). */
  streams?: SseStreams;
  /** Request timing and GET /metrics (createApiMetrics), mounted when given. */
  metrics?: ApiMetrics;
  /** The configured API keys (ApiKeys.none(): the api runs open). */
  apiKeys?: ApiKeys;
  /** The rate limiter's clock (epoch ms); default Redis's own, shared by every replica. */
  rateLimitNow?: () => number;
  /** Which models each stage may run (<STAGE>_ALLOWED_MODELS); none: any. */
  modelPolicy?: ModelPolicy;
  /** The submit-time cost estimate of POST /v1/research; none: answered without one. */
  forecaster?: ResearchForecaster;
  /** The reprice queue (POST /v1/admin/reprice), mounted when given. */
  repriceQueue?: Queue<RepriceJob, RepriceProgress>;
}

export function createApp(deps: AppDeps): Express {
  const app = express();
  app.disable("x-powered-by");
  app.set("etag", false);

  // First, so every request (and every error answer) is inside its SERVER span.
  // An incoming traceparent is continued only from a trusted caller (TRUST_INCOMING_TRACE_CONTEXT).
  app.use(httpServerTracing({ trustContext: traceContextTrust(deps.config.trustIncomingTraceContext, deps.apiKeys ?? ApiKeys.none()) }));
  app.use(requestId, securityHeaders);
  // Off unless CORS_ORIGINS lists origins; before authentication, so a browser can read a 401 or 429 too.
  if (deps.config.limits.corsOrigins.length > 0) app.use(corsFor(deps.config.limits.corsOrigins));
  const countRejection = deps.metrics?.rejected;
  if (deps.metrics) app.use(deps.metrics.middleware);
  // Open to anyone: health, the API's documentation, `/` (a redirect) and, unless METRICS_REQUIRE_KEY, /metrics.
  app.use(createHealthRouter({ redis: deps.redis }));
  if (deps.metrics && !deps.config.metricsRequireKey) app.get("/metrics", deps.metrics.handler);
  app.use(createOpenApiRouter({ maxQueryChars: deps.config.maxQueryChars, pipeline: deps.queues.pipeline }));
  app.get("/", (_req, res) => res.redirect(302, `${CONSOLE_BASE}/`));

  // Everything below needs an API key when keys are configured: a route added here cannot be open by mistake.
  app.use(requireApiKey(deps.apiKeys ?? ApiKeys.none()));
  // Bodies are read only for a caller with a key.
  // Rate limits per API key (client address without keys), after authentication, before any body is read.
  app.use(
    "/v1",
    requestRateLimit({
      redis: deps.redis,
      prefix: deps.config.limits.rateLimitPrefix,
      perMinute: deps.config.limits.rateLimitPerMinute,
      newResearchPerMinute: deps.config.limits.newResearchPerMinute,
      ...(deps.rateLimitNow ? { now: deps.rateLimitNow } : {}),
      countRejection,
    }),
  );
  app.use(express.json({ limit: deps.config.maxBodyBytes, type: ["application/json", "application/*+json"] }));
  if (deps.metrics && deps.config.metricsRequireKey) app.get("/metrics", deps.metrics.handler);
  app.use(
    createResearchRouter({
      store: deps.store,
      queues: deps.queues,
      config: deps.config,
      logger: deps.logger,
      streams: deps.streams ?? new SseStreams(),
      traces: deps.traceReader,
      queueDepth: new QueueDepthGate(deps.queues, deps.config.limits.maxQueueDepth, deps.config.limits.queueDepthCacheMs),
      sseSlots: new SseSlots(deps.config.limits.sseStreams, countRejection),
      countRejection,
      modelPolicy: deps.modelPolicy,
      forecaster: deps.forecaster,
    }),
  );
  if (deps.traceRouter) app.use(deps.traceRouter);
  if (deps.repriceQueue) app.use(createAdminRouter({ reprice: deps.repriceQueue }));
  // Bull Board (read-write: retry, promote, remove jobs of anyone): admin keys only.
  app.use(QUEUE_BOARD_PATH, requireAdmin("Bull Board (/admin)"), createQueueBoardRouter(deps.queues));

  // The web console (static assets; client-side routes fall back to its index.html). `/` leads there; a browser
  // without the key gets the 401's Basic challenge, its login prompt (any user name, the key as password).
  app.use(CONSOLE_BASE, consoleCsp, createConsoleRouter());

  app.use(notFoundRoute);
  app.use(errorHandler({ logger: deps.logger, maxBodyBytes: deps.config.maxBodyBytes }));
  return app;
}
