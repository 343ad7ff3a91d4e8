import "./instrumentation.js";
import { createServer } from "node:http";
import { loadPriceTable } from "@tracelane/pricing";
import type { Redis } from "ioredis";
import { createRedis, Shutdown, waitForRedis } from "@tracelane/runtime";
import { createLogger } from "@tracelane/tracing";
import { loadRules } from "./anomalies/config.js";
import { createCollector } from "./collector.js";
import { loadEnv } from "./env.js";
import { tracing } from "./instrumentation.js";

/** QUIT when connected (bounded), else drop the connection: a down Redis must not hold shutdown. */
async function closeRedis(r: Redis): Promise<void> {
  if (r.status === "ready") {
    await Promise.race([r.quit().catch(() => undefined), new Promise((resolve) => setTimeout(resolve, 2_000).unref())]);
  }
  r.disconnect();
}

async function main(): Promise<void> {
  const env = loadEnv();
  const logger = createLogger("trace-collector");
  const prices = loadPriceTable(env.TRACELANE_PRICE_TABLE);
  const rules = loadRules(env.TRACELANE_ANOMALY_RULES, {
    callLatencyMs: env.TRACELANE_RULE_CALL_LATENCY_MS,
    callTokens: env.TRACELANE_RULE_CALL_TOKENS,
    callCostUsd: env.TRACELANE_RULE_CALL_COST_USD,
    traceCostUsd: env.TRACELANE_RULE_TRACE_COST_USD,
    traceDurationMs: env.TRACELANE_RULE_TRACE_DURATION_MS,
    baselineFactor: env.TRACELANE_RULE_BASELINE_FACTOR,
    baselineMinSamples: env.TRACELANE_RULE_BASELINE_MIN_SAMPLES,
    baselineWindow: env.TRACELANE_RULE_BASELINE_WINDOW,
    disabled: env.TRACELANE_RULES_DISABLED,
  });

  const redis = createRedis(env.REDIS_URL, "worker", { connectionName: "trace-collector" });
  const consumerRedis = createRedis(env.REDIS_URL, "worker", { connectionName: "trace-collector-consumer" });
  await Promise.all([waitForRedis(redis, 30_000), waitForRedis(consumerRedis, 30_000)]);

  const collector = createCollector({
    redis,
    consumerRedis,
    stream: env.TRACELANE_SPAN_STREAM,
    prefix: env.TRACELANE_TRACE_PREFIX,
    anomalyStream: env.TRACELANE_ANOMALY_STREAM,
    anomalyStreamMaxLen: env.TRACELANE_ANOMALY_STREAM_MAXLEN,
    ttlSeconds: env.TRACELANE_TRACE_TTL_SECONDS,
    maxSpansPerTrace: env.TRACELANE_MAX_SPANS_PER_TRACE,
    prices,
    rules,
    consumer: env.COLLECTOR_CONSUMER_NAME,
    batchSize: env.COLLECTOR_BATCH_SIZE,
    recentTraces: env.COLLECTOR_RECENT_TRACES,
    blockMs: env.COLLECTOR_BLOCK_MS,
    claimIdleMs: env.COLLECTOR_CLAIM_IDLE_MS,
    claimIntervalMs: env.COLLECTOR_CLAIM_INTERVAL_MS,
    deleteAcked: env.COLLECTOR_DELETE_ACKED,
    sweepIntervalMs: env.COLLECTOR_SWEEP_INTERVAL_MS,
    ...(env.ALERT_WEBHOOK_URL
      ? {
          webhook: {
            url: env.ALERT_WEBHOOK_URL,
            timeoutMs: env.ALERT_WEBHOOK_TIMEOUT_MS,
            maxAttempts: env.ALERT_WEBHOOK_MAX_ATTEMPTS,
            maxQueue: env.ALERT_QUEUE_SIZE,
            ...(env.JAEGER_UI_URL ? { jaegerUiUrl: env.JAEGER_UI_URL } : {}),
          },
        }
      : {}),
    logger,
  });

  const shutdown = new Shutdown(logger);
  const server = createServer(collector.app);
  shutdown
    .add("stop accepting HTTP", () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
      }),
    )
    .add("stop the stream consumer after its current batch", () => collector.consumer.stop())
    .add("stop the expiry sweeper", () => collector.sweeper.stop())
    .add("flush alerts", () => collector.alerter?.flush(env.COLLECTOR_ALERT_FLUSH_MS))
    .add("flush spans", () => tracing.shutdown())
    .add("disconnect Redis", () => Promise.all([closeRedis(redis), closeRedis(consumerRedis)]).then(() => undefined));
  shutdown.installSignalHandlers();

  await collector.start();
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(env.PORT, () => resolve());
  });
  const address = server.address();
  logger.info(
    {
      port: typeof address === "object" && address ? address.port : env.PORT,
      stream: env.TRACELANE_SPAN_STREAM,
      prefix: env.TRACELANE_TRACE_PREFIX,
      consumer: env.COLLECTOR_CONSUMER_NAME,
      webhook: env.ALERT_WEBHOOK_URL !== undefined,
    },
    "trace-collector listening",
  );
}

main().catch((err: unknown) => {
  // A bad environment is the operator's to fix: the message names each variable, a stack adds nothing.
  console.error(err instanceof Error ? (err.name === "EnvError" ? err.message : (err.stack ?? err.message)) : err);
  process.exit(1);
});
