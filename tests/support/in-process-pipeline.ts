import { randomUUID } from "node:crypto";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { Redis } from "ioredis";
import { jobOptionsFromEnv, StageQueues, type Stage } from "@tracelane/queue-contract";
import { isFinal, ResearchStore, type ResearchView } from "@tracelane/research-store";
import { createRedis, waitForRedis } from "@tracelane/runtime";
import { runStageWorker, type RunningStageWorker } from "@tracelane/stage-runner";
import { createLogger } from "@tracelane/tracing";
import { waitFor } from "@tracelane/testkit";
// A test harness may wire services from their sources: the same modules their index.ts files wire.
import { createApp } from "../../services/api/src/app.js";
import { appConfig, loadEnv } from "../../services/api/src/env.js";
import { SseStreams } from "../../services/api/src/sse.js";
import { startSimulator, type RunningSimulator, type SimulatorConfig } from "../../services/llm-simulator/src/app.js";
import { analysisStage } from "../../services/analysis-worker/src/stage.js";
import { factcheckStage } from "../../services/factcheck-worker/src/stage.js";
import { synthesisStage } from "../../services/synthesis-worker/src/stage.js";

export interface InProcessPipelineOptions {
  redisUrl: string;
  /** Simulator config overrides (e.g. `apiKey`). */
  simulator?: Partial<SimulatorConfig>;
  /** Env for every stage worker (and the api's job options), on top of the prefixes and the simulator URL. */
  env?: Record<string, string>;
  /** Env for one stage's worker only, e.g. `{ factcheck: { LLM_MAX_RETRIES: "0" } }`. */
  stageEnv?: Partial<Record<Stage, Record<string, string>>>;
}

export interface InProcessPipeline {
  apiUrl: string;
  simulator: RunningSimulator;
  workers: RunningStageWorker[];
  prefixes: { queue: string; research: string };
  /** The api's queues (same prefix), e.g. to read a job's data with `queue(stage).getJob(id)`. */
  queues: StageQueues;
  /** A plain connection to the test Redis, for assertions. */
  redis: Redis;
  /** Reads the research record directly (no HTTP, so no extra SERVER spans). */
  store: ResearchStore;
  /** Poll the record until the research is completed, failed or cancelled. */
  waitForFinal(id: string, timeoutMs?: number): Promise<ResearchView>;
  /** Stop workers, api and simulator, then delete every key under this pipeline's prefixes. */
  close(): Promise<void>;
}

const STAGE_DEFINITIONS = [analysisStage, factcheckStage, synthesisStage];

/**
 * The whole pipeline in the test process: the simulator, the api app and the three stage workers,
 * each wired from its own module, on unique queue/research prefixes of the test Redis. Whatever
 * tracer provider the test registered first (useInMemoryTracing) records every span of it.
 */
export async function startInProcessPipeline(opts: InProcessPipelineOptions): Promise<InProcessPipeline> {
  const run = randomUUID().slice(0, 8);
  const prefixes = { queue: `tracing-${run}`, research: `tracing-${run}:research` };
  const simulator = await startSimulator({ faultRate: 0, ...opts.simulator });

  const commonEnv: Record<string, string> = {
    REDIS_URL: opts.redisUrl,
    TRACELANE_QUEUE_PREFIX: prefixes.queue,
    TRACELANE_RESEARCH_PREFIX: prefixes.research,
    LLM_BASE_URL: simulator.baseURL,
    JOB_BACKOFF_MS: "50",
    WORKER_CONCURRENCY: "4",
    LOG_LEVEL: process.env.LOG_LEVEL ?? "warn",
    ...opts.env,
  };

  // The api, wired as services/api/src/index.ts wires it (fail-fast producer connections).
  const redis = createRedis(opts.redisUrl, "producer");
  const apiRedis = createRedis(opts.redisUrl, "producer");
  const queueRedis = createRedis(opts.redisUrl, "producer");
  await Promise.all([waitForRedis(redis), waitForRedis(apiRedis), waitForRedis(queueRedis)]);
  const apiEnv = loadEnv({ TRACELANE_QUEUE_PREFIX: prefixes.queue, TRACELANE_RESEARCH_PREFIX: prefixes.research });
  const apiStore = new ResearchStore(apiRedis, { prefix: prefixes.research });
  const queues = new StageQueues({ connection: queueRedis, prefix: prefixes.queue, jobOptions: jobOptionsFromEnv(commonEnv) });
  const streams = new SseStreams();
  const app = createApp({
    store: apiStore,
    queues,
    redis: apiRedis,
    config: appConfig(apiEnv),
    logger: createLogger("api", { level: "silent" }),
    streams,
  });
  const server = await new Promise<Server>((resolve, reject) => {
    const s = app.listen(0, "127.0.0.1", (err?: Error) => (err ? reject(err) : resolve(s)));
  });
  const apiUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const workers: RunningStageWorker[] = [];
  const store = new ResearchStore(redis, { prefix: prefixes.research });

  const close = async () => {
    await Promise.all(workers.map((w) => w.shutdown.shutdown("test done")));
    streams.closeAll();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await queues.close().catch(() => undefined);
    await simulator.close();
    // The research prefix lives under the queue prefix, so one pattern covers both.
    const keys = await redis.keys(`${prefixes.queue}:*`);
    if (keys.length > 0) await redis.del(...keys);
    for (const r of [apiRedis, queueRedis, redis]) r.disconnect();
  };

  try {
    for (const definition of STAGE_DEFINITIONS) {
      workers.push(
        await runStageWorker(definition, {
          env: { ...commonEnv, ...opts.stageEnv?.[definition.stage] },
          installSignalHandlers: false,
        }),
      );
    }
  } catch (err) {
    await close();
    throw err;
  }

  return {
    apiUrl,
    simulator,
    workers,
    prefixes,
    queues,
    redis,
    store,
    waitForFinal: (id, timeoutMs = 20_000) =>
      waitFor(
        async () => {
          const view = await store.get(id);
          return view && isFinal(view.status) ? view : undefined;
        },
        { timeoutMs, intervalMs: 20, what: `research ${id} to finish` },
      ),
    close,
  };
}
