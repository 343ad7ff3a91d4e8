import { randomUUID } from "node:crypto";
import type { RedisClient } from "@tracelane/runtime";
import { RESEARCH_PIPELINE, type OutputKey, type Pipeline, type Stage } from "@tracelane/pipeline";
import { jobOptionsFromEnv, type StageQueues } from "@tracelane/queue-contract";
import { isFinal, ResearchStore, type ResearchView } from "@tracelane/research-store";
import { createRedis, waitForRedis } from "@tracelane/runtime";
import { runStageWorker, type RunningStageWorker, type StageDefinition } from "@tracelane/stage-runner";
import { createLogger } from "@tracelane/tracing";
import { waitFor } from "@tracelane/testkit";
// The same modules the services' index.ts files wire, through each service's test entry.
import { analysisStage } from "@tracelane/analysis-worker/stage";
import { composeApi, loadEnv } from "@tracelane/api/testing";
import { factcheckStage } from "@tracelane/factcheck-worker/stage";
import { startSimulator, type RunningSimulator, type SimulatorConfig } from "@tracelane/llm-simulator/testing";
import { synthesisStage } from "@tracelane/synthesis-worker/stage";

export interface InProcessPipelineOptions<S extends string = Stage, O extends string = OutputKey> {
  redisUrl: string;
  /**
   * The stages to run (default the shipped pipeline): one worker per stage, the api's request
   * schema, the records' rows and outputs all follow from it.
   */
  pipeline?: Pipeline<S, O>;
  /** Prompts of stages that have no worker folder (a stage added by a test); the shipped ones come from theirs. */
  stages?: StageDefinition<NoInfer<S>>[];
  /** Simulator config overrides (e.g. `apiKey`). */
  simulator?: Partial<SimulatorConfig>;
  /**
   * Env for every stage worker and the api (its job options too), on top of the prefixes and the
   * simulator URL: shared settings such as <STAGE>_ALLOWED_MODELS or DAILY_SPEND_CAP_USD reach both.
   */
  env?: Record<string, string>;
  /** Env for the api only, e.g. `{ API_KEYS: "…" }`. */
  apiEnv?: Record<string, string>;
  /** Env for one stage's worker only, e.g. `{ factcheck: { LLM_MAX_RETRIES: "0" } }`. */
  stageEnv?: Partial<Record<NoInfer<S>, Record<string, string>>>;
}

export interface InProcessPipeline<S extends string = Stage, O extends string = OutputKey> {
  pipeline: Pipeline<S, O>;
  apiUrl: string;
  simulator: RunningSimulator;
  workers: RunningStageWorker[];
  prefixes: { queue: string; research: string };
  /** The api's queues (same prefix), e.g. to read a job's data with `queue(stage).getJob(id)`. */
  queues: StageQueues<S>;
  /** A plain connection to the test Redis, for assertions. */
  redis: RedisClient;
  /** Reads the research record directly (no HTTP, so no extra SERVER spans). */
  store: ResearchStore<S, O>;
  /** Poll the record until the research is completed, failed or cancelled. */
  waitForFinal(id: string, timeoutMs?: number): Promise<ResearchView<S, O>>;
  /** Stop workers, api and simulator, then delete every key under this pipeline's prefixes. */
  close(): Promise<void>;
}

/** The prompt of each shipped stage, from its worker folder. */
const WORKER_STAGES: StageDefinition<string>[] = [analysisStage, factcheckStage, synthesisStage];

/** Each stage's prompt: the caller's for stages it added, else its worker folder's. */
function stageDefinitions<S extends string>(pipeline: Pipeline<S, string>, extra: StageDefinition<S>[] = []): StageDefinition<S>[] {
  return pipeline.names.map((stage) => {
    const found = extra.find((d) => d.stage === stage) ?? WORKER_STAGES.find((d) => d.stage === stage);
    if (!found) throw new Error(`stage "${stage}" has no worker folder; pass its prompt in \`stages\``);
    return found as StageDefinition<S>;
  });
}

/**
 * The whole pipeline in the test process: the simulator, the api app and one worker per stage,
 * each wired from its own module, on unique queue/research prefixes of the test Redis. Whatever
 * tracer provider the test registered first (useInMemoryTracing) records every span of it.
 */
export async function startInProcessPipeline<S extends string = Stage, O extends string = OutputKey>(
  opts: InProcessPipelineOptions<S, O>,
): Promise<InProcessPipeline<S, O>> {
  const pipeline = opts.pipeline ?? (RESEARCH_PIPELINE as unknown as Pipeline<S, O>);
  const definitions = stageDefinitions(pipeline, opts.stages);
  const run = randomUUID().slice(0, 8);
  const prefixes = { queue: `tracing-${run}`, research: `tracing-${run}:research` };
  // Tests drive faults through [[sim:fault=…]] directives in their queries.
  const simulator = await startSimulator({ faultRate: 0, directives: true, ...opts.simulator });

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
  const api = composeApi({
    // Its tests send from one address faster than a team would: no rate limits or queue depth cap unless they set them.
    env: loadEnv({
      RATE_LIMIT_PER_MINUTE: "0",
      RATE_LIMIT_NEW_RESEARCH_PER_MINUTE: "0",
      MAX_QUEUE_DEPTH: "0",
      ...opts.env,
      ...opts.apiEnv,
      TRACELANE_QUEUE_PREFIX: prefixes.queue,
      TRACELANE_RESEARCH_PREFIX: prefixes.research,
    }),
    redis: apiRedis,
    queueRedis,
    logger: createLogger("api", { level: "silent" }),
    jobOptions: jobOptionsFromEnv(commonEnv),
    pipeline,
  });
  // The api never names a stage (it serialises views and publishes the first stage), so its
  // store and queues are the pipeline's whatever their static type.
  const queues = api.queues as unknown as StageQueues<S>;
  const apiUrl = `http://127.0.0.1:${await api.start({ port: 0, host: "127.0.0.1" })}`;

  const workers: RunningStageWorker[] = [];
  const store = new ResearchStore(redis, { prefix: prefixes.research, pipeline });

  const close = async () => {
    await Promise.all(workers.map((w) => w.shutdown.shutdown("test done")));
    await api.close();
    await simulator.close();
    // The research prefix lives under the queue prefix, so one pattern covers both.
    const keys = await redis.keys(`${prefixes.queue}:*`);
    if (keys.length > 0) await redis.del(...keys);
    for (const r of [apiRedis, queueRedis, redis]) r.disconnect();
  };

  try {
    for (const definition of definitions) {
      workers.push(
        await runStageWorker(definition, {
          env: { ...commonEnv, ...opts.stageEnv?.[definition.stage] },
          pipeline,
        }),
      );
    }
  } catch (err) {
    await close();
    throw err;
  }

  return {
    pipeline,
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
