import { tracing } from "./instrumentation.js";
import { openPriceBook } from "@tracelane/pricing";
import { jobOptionsFromEnv } from "@tracelane/queue-contract";
import { runService } from "@tracelane/runtime";
import { createLogger } from "@tracelane/tracing";
import { composeApi } from "./api.js";
import { loadEnv } from "./env.js";

await runService({
  name: "api",
  loadEnv,
  createLogger,
  tracing,
  async start(ctx) {
    const { env, logger, shutdown, connectRedis } = ctx;
    // Request path: fail fast so a caller gets a 503 instead of a hung request while Redis is down.
    // The queues get their own connection (BullMQ loads its scripts on it).
    const [redis, queueRedis] = await Promise.all([
      connectRedis("producer", "tracelane-api"),
      connectRedis("producer", "tracelane-api-queues"),
    ]);
    const api = composeApi({
      env,
      redis,
      queueRedis,
      logger,
      jobOptions: jobOptionsFromEnv(),
      tracingStats: () => tracing.stats(),
      prices: openPriceBook(ctx, env.TRACELANE_PRICE_TABLE),
    });
    shutdown.add("http, lost-enqueue recovery, queues", () => api.close());
    const port = await api.start();
    logger.info({ host: env.HOST, port, tracing: tracing.enabled }, "api listening");
  },
});
