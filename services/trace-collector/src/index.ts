import { tracing } from "./instrumentation.js";
import { createServer } from "node:http";
import { ApiKeys } from "@tracelane/api-keys";
import { openPriceBook } from "@tracelane/pricing";
import { runService } from "@tracelane/runtime";
import { createLogger } from "@tracelane/tracing";
import { loadRules } from "./anomalies/config.js";
import { createCollector } from "./collector.js";
import { loadEnv } from "./env.js";

await runService({
  name: "trace-collector",
  loadEnv,
  createLogger,
  tracing,
  async start(ctx) {
    const { env, logger, shutdown, connectRedis, listen } = ctx;
    // Reloaded when the file changes or on SIGHUP; a bad file is refused, the table in force stays.
    const prices = openPriceBook(ctx, env.TRACELANE_PRICE_TABLE);
    // Each rule declares its variables; loadRules reads them (a bad one fails the boot, named).
    const rules = loadRules(env.TRACELANE_ANOMALY_RULES, process.env);
    // The api's key list (a bad entry fails the boot naming the variable, never the key).
    const apiKeys = ApiKeys.fromEnv(env);

    // The consumer's connection; each shard's read loop blocks on XREADGROUP on a duplicate of it.
    const [redis, consumerRedis] = await Promise.all([
      connectRedis("worker", "trace-collector"),
      connectRedis("worker", "trace-collector-consumer"),
    ]);

    const collector = createCollector({
      redis,
      consumerRedis,
      stream: env.TRACELANE_SPAN_STREAM,
      shards: env.TRACELANE_SPAN_STREAM_SHARDS,
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
      tracingStats: () => tracing.stats(),
      apiKeys,
      metricsRequireKey: env.METRICS_REQUIRE_KEY,
      immediateAssemblySpans: env.COLLECTOR_IMMEDIATE_ASSEMBLY_SPANS,
      assemblyIntervalMs: env.COLLECTOR_ASSEMBLY_INTERVAL_MS,
      forecastWindow: env.TRACELANE_FORECAST_WINDOW,
      forecastSettleMs: env.COLLECTOR_FORECAST_SETTLE_MS,
      maxTraceDepth: env.TRACELANE_MAX_TRACE_DEPTH,
      reprice: {
        queuePrefix: env.TRACELANE_QUEUE_PREFIX,
        researchPrefix: env.TRACELANE_RESEARCH_PREFIX,
        batchSize: env.REPRICE_BATCH_TRACES,
      },
    });

    const server = createServer(collector.app);
    // runService flushes spans and disconnects Redis after these.
    shutdown
      .add(
        "stop accepting HTTP",
        () =>
          new Promise<void>((resolve) => {
            if (!server.listening) return resolve();
            server.close(() => resolve());
            server.closeIdleConnections();
          }),
      )
      .add("stop the stream consumer after its current batches", () => collector.consumer.stop())
      .add("stop the reprice worker after its current step", () => collector.stopReprice())
      .add("stop the expiry sweeper", () => collector.sweeper.stop())
      .add("assemble the traces whose summary was deferred", () => collector.assembler.close())
      .add("flush alerts", () => collector.alerter?.flush(env.COLLECTOR_ALERT_FLUSH_MS));

    await collector.start();
    const port = await listen(server, { port: env.PORT, variable: "PORT" });
    logger.info(
      {
        port,
        stream: env.TRACELANE_SPAN_STREAM,
        shards: env.TRACELANE_SPAN_STREAM_SHARDS,
        prefix: env.TRACELANE_TRACE_PREFIX,
        consumer: env.COLLECTOR_CONSUMER_NAME,
        webhook: env.ALERT_WEBHOOK_URL !== undefined,
        otlpAuth: apiKeys.enabled ? `${apiKeys.size} key(s)` : "off",
      },
      "trace-collector listening",
    );
  },
});
