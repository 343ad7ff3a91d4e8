import type http from "node:http";
import { hostname } from "node:os";
import { RESEARCH_PIPELINE, type Pipeline, type Stage } from "@tracelane/pipeline";
import { jobOptionsFromEnv, StageQueues, type StageJob } from "@tracelane/queue-contract";
import { ModelPolicy, openPriceBook } from "@tracelane/pricing";
import { ResearchStore } from "@tracelane/research-store";
import { bootService, runService, type ServiceContext, type ServiceDefinition, type Shutdown } from "@tracelane/runtime";
import type { TracingStatsLike } from "@tracelane/metrics";
import { createLogger, type Logger } from "@tracelane/tracing";
import { ChatClient } from "./chat-client.js";
import { loadStageConfig, type StageWorkerConfig } from "./env.js";
import { errorTypeOf } from "./errors.js";
import { startHealthServer } from "./health-server.js";
import { registerWorker, type RegisteredWorker } from "./register-worker.js";
import { ModelPolicies } from "./resilience/model-policies.js";
import type { StageDefinition } from "./stage-definition.js";
import { createStageProcessor, type StageOutcome } from "./stage-processor.js";
import { createStageWorkerMetrics } from "./worker-metrics.js";

/** A limiter that never limits by count (see workerOptions.limiter). */
const NO_RATE_LIMIT = { max: Number.MAX_SAFE_INTEGER, duration: 1_000 };

export interface TracingLike {
  shutdown(): Promise<void>;
  stats?(): TracingStatsLike;
}

export interface RunningStageWorker {
  config: StageWorkerConfig;
  logger: Logger;
  /** One per shard of the stage's queue (TRACELANE_QUEUE_SHARDS), each with its share of WORKER_CONCURRENCY. */
  workers: RegisteredWorker[];
  shutdown: Shutdown;
}

export interface StageWorkerOptions<S extends string> {
  tracing?: TracingLike;
  /** Environment to configure from; default process.env. */
  env?: Record<string, string | undefined>;
  fetch?: typeof fetch;
  /** The pipeline the stage is part of (its queue, default model, next stage); default the shipped one. */
  pipeline?: Pipeline<S, string>;
}

/**
 * A stage worker in this process (tests, harnesses): the same wiring as the worker process, without
 * signal handlers; stop it with `shutdown.shutdown()`. A failed start closes what it opened and rejects.
 */
export async function runStageWorker<S extends string = Stage>(
  definition: StageDefinition<S>,
  opts: StageWorkerOptions<S> = {},
): Promise<RunningStageWorker> {
  return (await bootService(stageWorkerService(definition, opts), opts.env ? { env: opts.env } : {})).value;
}

/**
 * A stage worker's process entrypoint (services/<stage>-worker/src/index.ts): the one boot path of
 * every service (runService: env, logger, Redis, ordered shutdown, one-line boot failures).
 */
export function serveStageWorker<S extends string = Stage>(
  definition: StageDefinition<S>,
  opts: Omit<StageWorkerOptions<S>, "env"> = {},
): Promise<void> {
  return runService(stageWorkerService(definition, opts));
}

type StageServiceEnv = StageWorkerConfig["service"] & { config: StageWorkerConfig; source: Record<string, string | undefined> };

function stageWorkerService<S extends string>(
  definition: StageDefinition<S>,
  opts: StageWorkerOptions<S>,
): ServiceDefinition<StageServiceEnv, Logger, RunningStageWorker> {
  const pipeline = opts.pipeline ?? (RESEARCH_PIPELINE as unknown as Pipeline<S, string>);
  return {
    name: `${definition.stage}-worker`,
    loadEnv: (source) => {
      const config = loadStageConfig(definition.stage, source, pipeline) as StageWorkerConfig;
      return { ...config.service, config, source };
    },
    createLogger,
    tracing: opts.tracing,
    start: (ctx) => startStageWorker(definition, opts, pipeline, ctx),
  };
}

/**
 * Everything a stage worker does, given its definition: Redis, the queue contract, the model
 * client, the BullMQ worker, a /healthz, and the ordered shutdown steps (close worker -> close
 * queues; runService then flushes spans and disconnects Redis).
 */
async function startStageWorker<S extends string>(
  definition: StageDefinition<S>,
  opts: StageWorkerOptions<S>,
  pipeline: Pipeline<S, string>,
  ctx: ServiceContext<StageServiceEnv, Logger>,
): Promise<RunningStageWorker> {
  const { config } = ctx.env;
  const { logger } = ctx;
  const line = pipeline.stage(definition.stage);
  const redis = await ctx.connectRedis("worker", `tracelane-${definition.stage}-worker`);
  const store = new ResearchStore(redis, { prefix: config.researchPrefix, pipeline });
  const queues = new StageQueues({
    connection: redis,
    prefix: config.queuePrefix,
    jobOptions: jobOptionsFromEnv(ctx.env.source),
    pipeline,
    shards: config.queueShards,
  });
  const policies = new ModelPolicies(config.policies);
  // Reloaded when the file changes or on SIGHUP; a bad file is refused, the table in force stays.
  const prices = openPriceBook(ctx, config.priceTablePath);
  // The same policy the api applies to options.models, checked again before each call (defence in depth).
  const modelPolicy = ModelPolicy.fromEnv(
    [line],
    {
      [`${line.envPrefix}_MODEL`]: config.llm.model,
      [`${line.envPrefix}_FALLBACK_MODEL`]: config.llm.fallbackModel,
      [`${line.envPrefix}_ALLOWED_MODELS`]: config.allowedModels,
    },
    prices,
  );
  const tracingStats = opts.tracing?.stats?.bind(opts.tracing);
  const metrics = createStageWorkerMetrics({
    stage: definition.stage,
    queue: line.queue,
    circuits: () => client.circuits(),
    priceVersion: () => prices.version,
    ...(tracingStats ? { tracingStats } : {}),
  });
  const client: ChatClient = new ChatClient(
    {
      ...config.llm,
      modelVar: `${line.envPrefix}_MODEL`,
      ...(opts.fetch ? { fetch: opts.fetch } : {}),
      onRetry: (call) => metrics.modelRetry(call),
    },
    prices,
    policies,
  );
  const shardQueues = queues.shardsOf(definition.stage);
  // The process takes WORKER_CONCURRENCY jobs at once over all its shards.
  const perShard = Math.max(1, Math.ceil(config.concurrency / shardQueues.length));
  const processor = createStageProcessor({
    definition,
    ...(pipeline.fanOutStage === definition.stage && definition.claimCheck
      ? {
          tools: definition.claimCheck.tools(ctx.env.source, {
            llmBaseURL: config.llm.baseURL,
            llmApiKey: config.llm.apiKey,
            ...(opts.fetch ? { fetch: opts.fetch } : {}),
          }),
          claimCheck: {
            maxOutputTokens: config.llm.maxOutputTokens,
            maxToolTurns: config.maxToolTurns,
            allowUnpricedModels: config.allowUnpricedModels,
          },
          failOnClaimError: config.failOnClaimError,
        }
      : {}),
    store,
    queues,
    client,
    defaultModel: config.llm.model,
    modelPolicy,
    dailySpendCapUsd: config.dailySpendCapUsd,
    modelStep: {
      maxOutputTokens: config.llm.maxOutputTokens,
      fallbackModel: config.llm.fallbackModel,
      allowUnpricedModels: config.allowUnpricedModels,
      context: config.context,
      maxClaims: config.maxClaims,
    },
    // A provider's 429 backs off the whole stage: every shard's worker.
    rateLimitQueue: async (ms) => {
      await Promise.all(workers.map((w) => w.worker.rateLimit(ms)));
    },
    rateLimitBackoffMs: config.rateLimitBackoffMs,
    circuitOpenMaxWaitMs: config.circuitOpenMaxWaitMs,
    ...(config.crashAfterCheckpoint
      ? {
          afterCheckpoint: () => {
            logger.warn("TRACELANE_TEST_CRASH_AFTER_CHECKPOINT: killing this process after the checkpoint");
            process.kill(process.pid, "SIGKILL");
          },
        }
      : {}),
  });
  const workers = shardQueues.map((queue) =>
    registerWorker<StageJob<S>, unknown>({
      queueName: queue.name,
      prefix: queue.opts.prefix!,
      connection: redis,
      concurrency: perShard,
      logger,
      processor,
      workerOptions: {
        // Always a limiter: BullMQ's moveToActive honours a manual `worker.rateLimit(ms)` (our queue-wide
        // backoff after a provider's 429) only when the worker has one, so without it the other fetches of this
        // worker and every other replica kept taking jobs during the backoff.
        limiter: config.rateLimit ?? NO_RATE_LIMIT,
        // Rate-limited jobs go back to waiting without spending an attempt; this bounds them.
        maxStartedAttempts: 50,
        lockDuration: config.lockDurationMs,
        stalledInterval: config.stalledIntervalMs,
      },
      onAttemptEnd: (end) => metrics.attemptEnded(end),
      onFinalFailure: async (job, err) => {
        if (!job.data?.researchId) return;
        await store.failed(job.data.researchId, { stage: definition.stage, type: errorTypeOf(err), message: err.message });
      },
    }),
  );
  let health: http.Server | undefined;
  const shutdown = ctx.shutdown
    .add("stop health server", () => {
      if (!health) return;
      const server = health;
      const closed = new Promise<void>((r) => server.close(() => r()));
      server.closeAllConnections(); // probes keep connections alive; don't wait for them
      return closed;
    })
    .add("close worker (finish in-flight jobs)", async () => {
      await Promise.all(workers.map((w) => w.close()));
    })
    .add("close queues", () => queues.close());
  for (const w of workers) logCompletedJobs(w, definition.stage, logger);

  await Promise.all(workers.map((w) => w.worker.waitUntilReady()));
  // Healthy only once the worker is connected and taking jobs.
  health = await startHealthServer(
    config.healthPort,
    () => ({
      stage: definition.stage,
      worker: sumMetrics(workers.map((w) => w.metrics)),
      circuits: policies.states(),
      tracing: opts.tracing?.stats?.(),
    }),
    () => {
      // Ready unless every model the stage may use (its model, its fallback) is open.
      const openCircuits = policies.openCircuits();
      const models = [config.llm.model, ...(config.llm.fallbackModel ? [config.llm.fallbackModel] : [])];
      return { openCircuits, ready: !models.every((m) => openCircuits.includes(client.circuitKey(m))) };
    },
    metrics.service.handler,
  );
  logger.info(
    { queue: line.queue, model: config.llm.model, baseURL: config.llm.baseURL, concurrency: config.concurrency },
    `${definition.stage} worker ready`,
  );
  return { config, logger, workers, shutdown };
}

/** Who did the work, in a completion line: the host (a container id under compose) and the process. */
const REPLICA = `${hostname()}-${process.pid}`;

const usd = (v: number | null) => (v === null ? "unpriced" : `$${v.toFixed(6)}`);

function completionMessage(stage: string, outcome: Extract<StageOutcome, { outcome: "completed" }>): string {
  const { call, claim, claims } = outcome;
  if (claim) {
    if (outcome.reusedCheckpoint) return `${stage} claim ${claim.index} was checked by an earlier attempt: ${claim.verdict}`;
    return call
      ? `${stage} claim ${claim.index} checked: ${claim.verdict}, ${call.model}, ${claim.modelCalls} calls, ${Math.round(call.latencyMs)} ms, ${usd(call.costUsd)}`
      : `${stage} claim ${claim.index} could not be checked: unverifiable`;
  }
  if (!call) return `${stage} job completed (output reused from an earlier attempt)`;
  if (claims) {
    const verdicts = Object.entries(claims)
      .map(([v, n]) => `${n} ${v}`)
      .join(", ");
    return `${stage} job completed: ${Object.values(claims).reduce((a, b) => a + b, 0)} claims (${verdicts}), ${Math.round(call.latencyMs)} ms, ${usd(call.costUsd)}`;
  }
  return `${stage} job completed: ${call.model}, ${Math.round(call.latencyMs)} ms, ${usd(call.costUsd)}`;
}

/** The shards' job counters as one (what /healthz reports for the stage). */
function sumMetrics(all: RegisteredWorker["metrics"][]): RegisteredWorker["metrics"] {
  const sum = { completed: 0, failed: 0, stalled: 0, active: 0 };
  for (const m of all) for (const k of Object.keys(sum) as (keyof typeof sum)[]) sum[k] += m[k];
  return sum;
}

/** One info line per completed job: what a person watching `pnpm start` wants to see go by. */
function logCompletedJobs(worker: RegisteredWorker, stage: string, logger: Logger): void {
  worker.worker.on("completed", (job, outcome: StageOutcome | undefined) => {
    if (outcome?.outcome !== "completed") return;
    logger.info(
      {
        stage,
        replica: REPLICA,
        researchId: outcome.researchId,
        jobId: job.id,
        model: outcome.call?.model,
        latencyMs: outcome.call?.latencyMs,
        costUsd: outcome.call?.costUsd,
        reusedCheckpoint: outcome.reusedCheckpoint,
        ...(outcome.claim ? { claim: outcome.claim.index, verdict: outcome.claim.verdict, modelCalls: outcome.claim.modelCalls } : {}),
        ...(outcome.claims ? { verdicts: outcome.claims } : {}),
      },
      // The gist in the message too, for the readable (pretty) format.
      completionMessage(stage, outcome),
    );
  });
}
