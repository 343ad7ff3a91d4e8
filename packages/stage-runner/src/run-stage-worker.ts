import type http from "node:http";
import { jobOptionsFromEnv, QUEUE_NAMES, StageQueues, type StageJob } from "@tracelane/queue-contract";
import { loadPriceTable } from "@tracelane/pricing";
import { ResearchStore } from "@tracelane/research-store";
import { createRedis, Shutdown } from "@tracelane/runtime";
import { createLogger, type Logger } from "@tracelane/tracing";
import { ChatClient } from "./chat-client.js";
import { loadStageConfig, type StageWorkerConfig } from "./env.js";
import { errorTypeOf } from "./errors.js";
import { startHealthServer } from "./health-server.js";
import { registerWorker, type RegisteredWorker } from "./register-worker.js";
import { ModelPolicies } from "./resilience/model-policies.js";
import type { StageDefinition } from "./stage-definition.js";
import { createStageProcessor } from "./stage-processor.js";

export interface TracingLike {
  shutdown(): Promise<void>;
  stats?(): unknown;
}

export interface RunningStageWorker {
  config: StageWorkerConfig;
  logger: Logger;
  worker: RegisteredWorker;
  shutdown: Shutdown;
}

/**
 * Everything a stage worker process does, given its definition: config from
 * env, Redis, the queue contract, the model client, the BullMQ worker, and an
 * ordered shutdown (close worker -> close queues -> flush spans -> Redis).
 */
export async function runStageWorker(
  definition: StageDefinition,
  opts: { tracing?: TracingLike; env?: Record<string, string | undefined>; installSignalHandlers?: boolean; fetch?: typeof fetch } = {},
): Promise<RunningStageWorker> {
  const config = loadStageConfig(definition.stage, opts.env);
  const logger = createLogger(`${definition.stage}-worker`, { level: opts.env?.LOG_LEVEL ?? process.env.LOG_LEVEL ?? "info" });
  const redis = createRedis(config.redisUrl, "worker");
  const store = new ResearchStore(redis, { prefix: config.researchPrefix });
  const queues = new StageQueues({ connection: redis, prefix: config.queuePrefix, jobOptions: jobOptionsFromEnv(opts.env) });
  const policies = new ModelPolicies(config.policies);
  const client = new ChatClient(
    {
      ...config.llm,
      modelVar: `${definition.stage.toUpperCase()}_MODEL`,
      ...(opts.fetch ? { fetch: opts.fetch } : {}),
    },
    loadPriceTable(config.priceTablePath),
    policies,
  );
  let bullWorker: RegisteredWorker["worker"] | undefined;

  const worker = registerWorker<StageJob, unknown>({
    queueName: QUEUE_NAMES[definition.stage],
    prefix: config.queuePrefix,
    connection: redis,
    concurrency: config.concurrency,
    logger,
    processor: createStageProcessor({
      definition,
      store,
      queues,
      client,
      defaultModel: config.llm.model,
      modelStep: { maxOutputTokens: config.llm.maxOutputTokens, fallbackModel: config.llm.fallbackModel, context: config.context },
      rateLimitQueue: async (ms) => {
        await bullWorker?.rateLimit(ms);
      },
      rateLimitBackoffMs: config.rateLimitBackoffMs,
      ...(config.crashAfterCheckpoint
        ? {
            afterCheckpoint: () => {
              logger.warn("TRACELANE_TEST_CRASH_AFTER_CHECKPOINT: killing this process after the checkpoint");
              process.kill(process.pid, "SIGKILL");
            },
          }
        : {}),
    }),
    workerOptions: {
      ...(config.rateLimit ? { limiter: config.rateLimit } : {}),
      // Rate-limited jobs go back to waiting without spending an attempt; this bounds them.
      maxStartedAttempts: 50,
      lockDuration: config.lockDurationMs,
      stalledInterval: config.stalledIntervalMs,
    },
    onFinalFailure: async (job, err) => {
      if (!job.data?.researchId) return;
      await store.failed(job.data.researchId, { stage: definition.stage, type: errorTypeOf(err), message: err.message });
    },
  });


  bullWorker = worker.worker;
  let health: http.Server | undefined;
  const shutdown = new Shutdown(logger)
    .add("stop health server", () => {
      if (!health) return;
      const server = health;
      const closed = new Promise<void>((r) => server.close(() => r()));
      server.closeAllConnections(); // probes keep connections alive; don't wait for them
      return closed;
    })
    .add("close worker (finish in-flight jobs)", () => worker.close())
    .add("close queues", () => queues.close())
    .add("flush spans", () => opts.tracing?.shutdown())
    .add("disconnect redis", async () => {
      await redis.quit().catch(() => redis.disconnect());
    });
  if (opts.installSignalHandlers) shutdown.installSignalHandlers({ graceMs: config.shutdownGraceMs });

  await worker.worker.waitUntilReady();
  // Healthy only once the worker is connected and taking jobs.
  health = await startHealthServer(config.healthPort, () => ({
    stage: definition.stage,
    worker: worker.metrics,
    circuits: policies.states(),
    tracing: opts.tracing?.stats?.(),
  }));
  logger.info(
    { queue: QUEUE_NAMES[definition.stage], model: config.llm.model, baseURL: config.llm.baseURL, concurrency: config.concurrency },
    `${definition.stage} worker ready`,
  );
  return { config, logger, worker, shutdown };
}
