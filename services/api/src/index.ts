import "./instrumentation.js";
import type { Server } from "node:http";
import { jobOptionsFromEnv, StageQueues } from "@tracelane/queue-contract";
import { ResearchStore } from "@tracelane/research-store";
import { createRedis, Shutdown, waitForRedis } from "@tracelane/runtime";
import { createLogger } from "@tracelane/tracing";
import { createTraceReader } from "@tracelane/trace-store";
import { createApp } from "./app.js";
import { appConfig, loadEnv } from "./env.js";
import { tracing } from "./instrumentation.js";
import { startLostEnqueueRecovery } from "./lost-enqueue-recovery.js";
import { createTracesRouter } from "./routes/traces.js";
import { SseStreams } from "./sse.js";

const HTTP_DRAIN_MS = 10_000;
const logger = createLogger("api");

async function main(): Promise<void> {
  const env = loadEnv();
  const shutdown = new Shutdown(logger);

  // Request path: fail fast so a caller gets a 503 instead of a hung request while Redis is down.
  const redis = createRedis(env.REDIS_URL, "producer", { connectionName: "tracelane-api" });
  // Queues get their own fail-fast connection (BullMQ loads its scripts on it); not blocking, so no null retries needed.
  const queueRedis = createRedis(env.REDIS_URL, "producer", { connectionName: "tracelane-api-queues" });
  await Promise.all([waitForRedis(redis, 30_000), waitForRedis(queueRedis, 30_000)]);

  const store = new ResearchStore(redis, { prefix: env.TRACELANE_RESEARCH_PREFIX, ttlSeconds: env.RESEARCH_TTL_SECONDS });
  const queues = new StageQueues({ connection: queueRedis, prefix: env.TRACELANE_QUEUE_PREFIX, jobOptions: jobOptionsFromEnv() });
  const streams = new SseStreams();
  const traceRouter = createTracesRouter({
    reader: createTraceReader(redis, { prefix: env.TRACELANE_TRACE_PREFIX }),
    ...(env.JAEGER_UI_URL ? { jaegerUiUrl: env.JAEGER_UI_URL } : {}),
  });

  const app = createApp({ store, queues, redis, config: appConfig(env), logger, streams, traceRouter });
  const server = await new Promise<Server>((resolve, reject) => {
    const s = app.listen(env.PORT, env.HOST, (err?: Error) => (err ? reject(err) : resolve(s)));
  });
  logger.info({ host: env.HOST, port: env.PORT, tracing: tracing.enabled }, "api listening");
  const recovery = startLostEnqueueRecovery({
    store,
    queues,
    logger,
    intervalMs: env.LOST_ENQUEUE_CHECK_MS,
    minAgeMs: env.LOST_ENQUEUE_MIN_AGE_MS,
  });

  shutdown
    .add("http", () => closeServer(server, streams))
    .add("lost-enqueue recovery", () => recovery.stop())
    .add("queues", () => queues.close())
    .add("tracing", () => tracing.shutdown())
    .add("redis", async () => {
      await Promise.all([redis.quit().catch(() => redis.disconnect()), queueRedis.quit().catch(() => queueRedis.disconnect())]);
    })
    .add("done", () => logger.info("shutdown complete"));
  shutdown.installSignalHandlers();
}

/** Stop accepting connections, end SSE streams and idle keep-alive sockets, give in-flight requests time to finish. */
async function closeServer(server: Server, streams: SseStreams): Promise<void> {
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  streams.closeAll();
  server.closeIdleConnections();
  const deadline = setTimeout(() => server.closeAllConnections(), HTTP_DRAIN_MS);
  await closed;
  clearTimeout(deadline);
}

main().catch((err: unknown) => {
  // Boot failed (bad env, Redis unreachable): say why and exit non-zero.
  logger.fatal({ err }, "api failed to start");
  process.exit(1);
});
