import type { Server } from "node:http";
import type { ApiKeys } from "@tracelane/api-keys";
import { Queue, type JobsOptions } from "bullmq";
import type { Express, Router } from "express";
import type { RedisClient } from "@tracelane/runtime";
import type { Pipeline } from "@tracelane/pipeline";
import { loadPriceTable, ModelPolicy, type PriceSource } from "@tracelane/pricing";
import {
  REPRICE_JOB_OPTIONS,
  REPRICE_QUEUE,
  repriceQueuePrefix,
  StageQueues,
  type RepriceJob,
  type RepriceProgress,
} from "@tracelane/queue-contract";
import { ResearchStore } from "@tracelane/research-store";
import { listen } from "@tracelane/runtime";
import { createTraceReader } from "@tracelane/trace-store";
import type { Logger } from "@tracelane/tracing";
import type { TracingStatsLike } from "@tracelane/metrics";
import { createApp } from "./app.js";
import { createApiServer } from "./http/server-timeouts.js";
import { apiKeysFromEnv, checkBinding } from "./auth/binding.js";
import { appConfig, type Env } from "./env.js";
import { startLostEnqueueRecovery } from "./lost-enqueue-recovery.js";
import { createApiMetrics } from "./metrics.js";
import { createTracesRouter } from "./routes/traces.js";
import { ResearchForecaster } from "./forecast.js";
import { SseStreams } from "./sse.js";

/** How long in-flight requests get to finish once the api stops accepting connections. */
const HTTP_DRAIN_MS = 10_000;

export interface ComposeApiOptions {
  env: Env;
  /** Fail-fast ("producer") connection for the research store, trace reads and /readyz. */
  redis: RedisClient;
  /** The queues' own fail-fast connection (BullMQ loads its scripts on it). */
  queueRedis: RedisClient;
  logger: Logger;
  /** Overrides of the default job options (JOB_ATTEMPTS, JOB_BACKOFF_MS... see jobOptionsFromEnv). */
  jobOptions?: JobsOptions;
  /** The stages of a research (request schema, records, first queue); default the shipped pipeline. */
  pipeline?: Pipeline<string, string>;
  /** GET /v1/traces...; default: read the trace-collector's store under TRACELANE_TRACE_PREFIX. */
  traceRouter?: Router;
  /** This process's span export counts, for GET /metrics. */
  tracingStats?: () => TracingStatsLike;
  /** The API keys; default: read from API_KEYS / API_KEYS_FILE. */
  apiKeys?: ApiKeys;
  /** The rate limiter's clock (epoch ms); default Redis's own (TIME), one clock for every replica. Tests pass a manual one. */
  rateLimitNow?: () => number;
  /** Model policy and what-ifs price with this (the entrypoint's reloading PriceBook); default: TRACELANE_PRICE_TABLE read once. */
  prices?: PriceSource;
}

export interface Api {
  app: Express;
  store: ResearchStore;
  queues: StageQueues;
  streams: SseStreams;
  /** Listen (a port in use fails naming PORT) and start the lost-enqueue recovery; resolves to the bound port. */
  start(opts?: { port?: number; host?: string }): Promise<number>;
  /**
   * Stop in order: refuse new connections and end SSE streams (in-flight requests get
   * HTTP_DRAIN_MS), stop the recovery, close the queues. The Redis connections are the caller's.
   */
  close(): Promise<void>;
}

/**
 * The api's composition root: the one place its parts are built and wired, used by its
 * entrypoint (src/index.ts), its tests and the in-process test pipeline.
 */
export function composeApi(opts: ComposeApiOptions): Api {
  const { env, redis, queueRedis, logger } = opts;
  // The api never names a stage (it serialises views and publishes the pipeline's first stage),
  // so a store and queues of any pipeline fit the shipped pipeline's types.
  const pipeline = opts.pipeline ? { pipeline: opts.pipeline } : {};
  const store = new ResearchStore(redis, {
    prefix: env.TRACELANE_RESEARCH_PREFIX,
    ttlSeconds: env.RESEARCH_TTL_SECONDS,
    ...pipeline,
  }) as unknown as ResearchStore;
  const queues = new StageQueues({
    connection: queueRedis,
    prefix: env.TRACELANE_QUEUE_PREFIX,
    shards: env.TRACELANE_QUEUE_SHARDS,
    ...(opts.jobOptions ? { jobOptions: opts.jobOptions } : {}),
    ...pipeline,
  }) as unknown as StageQueues;
  // POST /v1/admin/reprice adds here; the trace-collector consumes it.
  const repriceQueue = new Queue<RepriceJob, RepriceProgress>(REPRICE_QUEUE, {
    connection: queueRedis,
    prefix: repriceQueuePrefix(env.TRACELANE_QUEUE_PREFIX),
    defaultJobOptions: REPRICE_JOB_OPTIONS,
  });
  const streams = new SseStreams();
  // A bad API_KEYS / API_KEYS_FILE stops the boot here with an EnvError naming the variable.
  const apiKeys = opts.apiKeys ?? apiKeysFromEnv(env);
  const traceReader = createTraceReader(redis, { prefix: env.TRACELANE_TRACE_PREFIX });
  const prices = opts.prices ?? loadPriceTable(env.TRACELANE_PRICE_TABLE);
  const traceRouter =
    opts.traceRouter ??
    createTracesRouter({
      reader: traceReader,
      owners: store,
      prices,
      stages: queues.pipeline.names,
      whatIfMaxTraces: env.TRACELANE_WHAT_IF_MAX_TRACES,
      ...(env.JAEGER_UI_URL ? { jaegerUiUrl: env.JAEGER_UI_URL } : {}),
    });
  // The stages' models as their workers have them (same variables), and what each may run instead.
  const modelPolicy = ModelPolicy.fromEnv(queues.pipeline.stages, env, prices);
  const forecaster = new ResearchForecaster({
    redis,
    tracePrefix: env.TRACELANE_TRACE_PREFIX,
    prices,
    stages: queues.pipeline.names,
    configuredModel: (stage) => modelPolicy.model(stage),
    minSamples: env.FORECAST_MIN_SAMPLES,
    window: env.TRACELANE_FORECAST_WINDOW,
  });
  const metrics = createApiMetrics({
    queues,
    store,
    priceVersion: () => prices.version,
    ...(opts.tracingStats ? { tracingStats: opts.tracingStats } : {}),
  });
  const app = createApp({
    store,
    queues,
    redis,
    config: appConfig(env),
    logger,
    streams,
    traceRouter,
    traceReader,
    metrics,
    apiKeys,
    ...(opts.rateLimitNow ? { rateLimitNow: opts.rateLimitNow } : {}),
    modelPolicy,
    forecaster,
    repriceQueue,
  });

  let server: Server | undefined;
  let recovery: { stop(): void | Promise<void> } | undefined;
  let closing: Promise<void> | undefined;
  return {
    app,
    store,
    queues,
    streams,
    async start(where = {}) {
      const host = where.host ?? env.HOST;
      checkBinding({ host, keys: apiKeys, allowUnauthenticated: env.ALLOW_UNAUTHENTICATED });
      if (!apiKeys.enabled) {
        logger.warn(
          { host, allowUnauthenticated: env.ALLOW_UNAUTHENTICATED },
          "no API keys configured (API_KEYS / API_KEYS_FILE): every request is served without authentication; set API_KEYS before exposing the api",
        );
      }
      server = createApiServer(app, appConfig(env).limits.server, metrics.rejected);
      const port = await listen(server, { port: where.port ?? env.PORT, host, variable: "PORT" });
      recovery = startLostEnqueueRecovery({
        store,
        queues,
        logger,
        intervalMs: env.LOST_ENQUEUE_CHECK_MS,
        minAgeMs: env.LOST_ENQUEUE_MIN_AGE_MS,
      });
      return port;
    },
    close: () =>
      (closing ??= (async () => {
        if (server) await closeServer(server, streams);
        else streams.closeAll();
        await recovery?.stop();
        await queues.close().catch(() => undefined);
        await repriceQueue.close().catch(() => undefined);
      })()),
  };
}

/** Stop accepting connections, end SSE streams and idle keep-alive sockets, give in-flight requests time to finish. */
async function closeServer(server: Server, streams: SseStreams): Promise<void> {
  if (!server.listening) return;
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  streams.closeAll();
  server.closeIdleConnections();
  const deadline = setTimeout(() => server.closeAllConnections(), HTTP_DRAIN_MS);
  await closed;
  clearTimeout(deadline);
}
