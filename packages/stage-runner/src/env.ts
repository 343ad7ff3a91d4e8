import { z } from "zod";
import { MAX_CLAIMS_LIMIT, RESEARCH_PIPELINE, type Pipeline, type Stage } from "@tracelane/pipeline";
import { allowedModelsEnv } from "@tracelane/pricing";
import { DEFAULT_QUEUE_PREFIX, envQueueShards } from "@tracelane/queue-contract";
import { DEFAULT_RESEARCH_PREFIX } from "@tracelane/research-store";
import { envBoolean, envInt, envNumber, envOptionalString, parseEnv, redisEnvShape, serviceEnvShape } from "@tracelane/runtime";

/** The simulator that `pnpm demo` starts; a real provider is one env var away. */
export const DEFAULT_LLM_BASE_URL = "http://127.0.0.1:4010/v1";
export const DEFAULT_LLM_API_KEY = "sk-simulator";

/** Each stage's model when `<STAGE>_MODEL` is unset, from the pipeline definition. */
export const DEFAULT_STAGE_MODELS = Object.fromEntries(RESEARCH_PIPELINE.stages.map((s) => [s.stage, s.defaultModel])) as Record<
  Stage,
  string
>;

type AnyPipeline = Pipeline<string, string>;

const url = z.string().url("must be a URL such as https://api.openai.com/v1");

const baseSchema = z.object({
  // LOG_LEVEL, LOG_FORMAT, SHUTDOWN_GRACE_MS, REDIS_URL...: read the same way as in every service.
  ...serviceEnvShape,
  ...redisEnvShape,
  TRACELANE_QUEUE_PREFIX: z.string().min(1).default(DEFAULT_QUEUE_PREFIX),
  TRACELANE_QUEUE_SHARDS: envQueueShards(),
  TRACELANE_RESEARCH_PREFIX: z.string().min(1).default(DEFAULT_RESEARCH_PREFIX),
  TRACELANE_PRICE_TABLE: envOptionalString(),
  WORKER_CONCURRENCY: envInt(8, { min: 1, max: 1000 }),
  HEALTH_PORT: envInt(0, { min: 0, max: 65535 }),
  LLM_BASE_URL: url.default(DEFAULT_LLM_BASE_URL),
  LLM_API_KEY: envOptionalString(),
  LLM_TIMEOUT_MS: envInt(60_000, { min: 100 }),
  LLM_MAX_RETRIES: envInt(3, { min: 0, max: 10 }),
  LLM_RETRY_BASE_MS: envInt(500, { min: 0 }),
  LLM_RETRY_MAX_DELAY_MS: envInt(20_000, { min: 0 }),
  LLM_RETRY_BUDGET_MS: envInt(120_000, { min: 100 }),
  LLM_MAX_OUTPUT_TOKENS: envInt(1024, { min: 1 }),
  BREAKER_THRESHOLD: envInt(5, { min: 1 }),
  BREAKER_HALF_OPEN_MS: envInt(15_000, { min: 0 }),
  /** How long a stage job waits (delayed, no attempt spent) while every model it may use has its circuit open. */
  CIRCUIT_OPEN_MAX_WAIT_MS: envInt(300_000, { min: 0 }),
  CONTEXT_STRATEGY: z.enum(["trim", "summarize"], { message: 'must be "trim" or "summarize"' }).default("trim"),
  SUMMARY_MODEL: z.string().min(1).default("gpt-4.1-nano"),
  TRACELANE_CONTEXT_LIMITS: envOptionalString().pipe(
    z
      .string()
      .transform((text, ctx) => {
        try {
          return z.record(z.string(), z.number().int().positive()).parse(JSON.parse(text));
        } catch {
          ctx.addIssue({ code: "custom", message: 'must be JSON like {"gpt-4.1": 1047576}' });
          return z.NEVER;
        }
      })
      .optional(),
  ),
  WORKER_RATE_LIMIT_MAX: envInt(0, { min: 0 }),
  WORKER_RATE_LIMIT_DURATION_MS: envInt(1_000, { min: 1 }),
  RATE_LIMIT_BACKOFF_MS: envInt(1_000, { min: 0 }),
  /** A job whose worker stops renewing its lock this long is taken over by another worker. */
  WORKER_LOCK_DURATION_MS: envInt(30_000, { min: 500 }),
  WORKER_STALLED_INTERVAL_MS: envInt(15_000, { min: 500 }),
  /** With a research's maxCostUsd set, call a model missing from the price table anyway (default: fail closed). */
  ALLOW_UNPRICED_MODELS: envBoolean(false),
  /** Most a spender (API key, or client address without keys) may spend on model calls per UTC day; 0: no cap. */
  DAILY_SPEND_CAP_USD: envNumber(0, { min: 0, max: 1_000_000 }),
  /** The most claims the first stage's structured answer may make (one fan-out job each); up to MAX_CLAIMS_LIMIT. */
  MAX_CLAIMS: envInt(8, { min: 1, max: MAX_CLAIMS_LIMIT }),
  /** Model turns of one claim check that may ask for tools; the turn after them is offered none, so it answers. */
  MAX_TOOL_TURNS: envInt(3, { min: 0, max: 10 }),
  /** Chaos knob for crash-safety tests: SIGKILL the process right after a stage checkpoint. */
  TRACELANE_TEST_CRASH_AFTER_CHECKPOINT: envBoolean(false),
});

interface StageOverrides {
  model: string;
  fallbackModel?: string | undefined;
  baseURL?: string | undefined;
  apiKey?: string | undefined;
  provider?: string | undefined;
  allowedModels?: string[] | undefined;
  failOnClaimError: boolean;
}

/**
 * Shared names (`LLM_BASE_URL`, `LLM_API_KEY`) give one provider for every
 * stage; `<STAGE>_LLM_BASE_URL`, `<STAGE>_LLM_API_KEY`, `<STAGE>_MODEL` and
 * `<STAGE>_PROVIDER` override per stage (e.g. `FACTCHECK_MODEL=gemini-2.5-flash`).
 */
function stageOverridesSchema(stage: string, pipeline: AnyPipeline) {
  const { envPrefix: P, defaultModel } = pipeline.stage(stage);
  return z
    .object({
      [`${P}_MODEL`]: z.string().min(1).default(defaultModel),
      [`${P}_FALLBACK_MODEL`]: envOptionalString(),
      [`${P}_LLM_BASE_URL`]: envOptionalString().pipe(url.optional()),
      [`${P}_LLM_API_KEY`]: envOptionalString(),
      [`${P}_PROVIDER`]: envOptionalString(),
      [`${P}_ALLOWED_MODELS`]: allowedModelsEnv(),
      [`${P}_FAIL_ON_CLAIM_ERROR`]: envBoolean(false),
    })
    .superRefine((e, ctx) => {
      const v = e as Record<string, string | undefined>;
      const fallback = v[`${P}_FALLBACK_MODEL`];
      if (fallback !== undefined && fallback === (v[`${P}_MODEL`] ?? defaultModel)) {
        ctx.addIssue({
          code: "custom",
          path: [`${P}_FALLBACK_MODEL`],
          message: `must name another model than ${P}_MODEL (it is used while that model's circuit breaker is open); unset it to have no fallback`,
        });
      }
    })
    .transform((e): StageOverrides => {
      const v = e as Record<string, string | undefined>;
      return {
        allowedModels: (e as Record<string, string[] | undefined>)[`${P}_ALLOWED_MODELS`],
        model: v[`${P}_MODEL`] ?? defaultModel,
        fallbackModel: v[`${P}_FALLBACK_MODEL`],
        baseURL: v[`${P}_LLM_BASE_URL`],
        apiKey: v[`${P}_LLM_API_KEY`],
        provider: v[`${P}_PROVIDER`],
        failOnClaimError: (e as Record<string, boolean>)[`${P}_FAIL_ON_CLAIM_ERROR`] === true,
      };
    });
}

/** The names every stage worker reads, for docs and the compose/code agreement test. */
export function stageEnvNames(stage: string, pipeline: AnyPipeline = RESEARCH_PIPELINE): string[] {
  const P = pipeline.stage(stage).envPrefix;
  return [
    ...Object.keys(baseSchema.shape),
    `${P}_MODEL`,
    `${P}_FALLBACK_MODEL`,
    `${P}_LLM_BASE_URL`,
    `${P}_LLM_API_KEY`,
    `${P}_PROVIDER`,
    `${P}_ALLOWED_MODELS`,
    `${P}_FAIL_ON_CLAIM_ERROR`,
  ];
}

export type StageWorkerConfig = ReturnType<typeof loadStageConfig>;

/** A stage worker's config; `stage` must be a stage of `pipeline` (default: the shipped one). */
export function loadStageConfig<S extends string = Stage>(
  stage: S,
  source: Record<string, string | undefined> = process.env,
  pipeline: Pipeline<S, string> = RESEARCH_PIPELINE as unknown as Pipeline<S, string>,
) {
  const P = pipeline.stage(stage).envPrefix;
  const env = parseEnv(baseSchema, source);
  const o = parseEnv(stageOverridesSchema(stage, pipeline as AnyPipeline), source);
  return {
    stage,
    redisUrl: env.REDIS_URL,
    /** What runService reads (runtime's serviceEnvShape and redisEnvShape). */
    service: {
      LOG_LEVEL: env.LOG_LEVEL,
      LOG_FORMAT: env.LOG_FORMAT,
      SHUTDOWN_GRACE_MS: env.SHUTDOWN_GRACE_MS,
      TRACELANE_EXIT_WITH_PARENT: env.TRACELANE_EXIT_WITH_PARENT,
      REDIS_URL: env.REDIS_URL,
      REDIS_CLUSTER_NODES: env.REDIS_CLUSTER_NODES,
      REDIS_CONNECT_TIMEOUT_MS: env.REDIS_CONNECT_TIMEOUT_MS,
    },
    queuePrefix: env.TRACELANE_QUEUE_PREFIX,
    queueShards: env.TRACELANE_QUEUE_SHARDS,
    researchPrefix: env.TRACELANE_RESEARCH_PREFIX,
    priceTablePath: env.TRACELANE_PRICE_TABLE,
    concurrency: env.WORKER_CONCURRENCY,
    healthPort: env.HEALTH_PORT,
    shutdownGraceMs: env.SHUTDOWN_GRACE_MS,
    crashAfterCheckpoint: env.TRACELANE_TEST_CRASH_AFTER_CHECKPOINT,
    lockDurationMs: env.WORKER_LOCK_DURATION_MS,
    stalledIntervalMs: env.WORKER_STALLED_INTERVAL_MS,
    rateLimit: env.WORKER_RATE_LIMIT_MAX > 0 ? { max: env.WORKER_RATE_LIMIT_MAX, duration: env.WORKER_RATE_LIMIT_DURATION_MS } : undefined,
    rateLimitBackoffMs: env.RATE_LIMIT_BACKOFF_MS,
    allowUnpricedModels: env.ALLOW_UNPRICED_MODELS,
    dailySpendCapUsd: env.DAILY_SPEND_CAP_USD,
    maxClaims: env.MAX_CLAIMS,
    maxToolTurns: env.MAX_TOOL_TURNS,
    /** `<STAGE>_FAIL_ON_CLAIM_ERROR`: a claim that cannot be checked fails the research instead of ending unverifiable. */
    failOnClaimError: o.failOnClaimError,
    /** `<STAGE>_ALLOWED_MODELS`; undefined: every priced model (plus the stage's model and fallback). */
    allowedModels: o.allowedModels,
    context: {
      strategy: env.CONTEXT_STRATEGY,
      summaryModel: env.SUMMARY_MODEL,
      limits: env.TRACELANE_CONTEXT_LIMITS ?? {},
    },
    policies: {
      maxRetries: env.LLM_MAX_RETRIES,
      retryBaseMs: env.LLM_RETRY_BASE_MS,
      retryMaxDelayMs: env.LLM_RETRY_MAX_DELAY_MS,
      retryBudgetMs: env.LLM_RETRY_BUDGET_MS,
      breakerThreshold: env.BREAKER_THRESHOLD,
      breakerHalfOpenMs: env.BREAKER_HALF_OPEN_MS,
    },
    circuitOpenMaxWaitMs: env.CIRCUIT_OPEN_MAX_WAIT_MS,
    llm: {
      baseURL: o.baseURL ?? env.LLM_BASE_URL,
      apiKey: o.apiKey ?? env.LLM_API_KEY ?? DEFAULT_LLM_API_KEY,
      /** Which variable holds the key, for error messages (never the key itself). */
      apiKeyVar: o.apiKey ? `${P}_LLM_API_KEY` : "LLM_API_KEY",
      model: o.model,
      fallbackModel: o.fallbackModel,
      provider: o.provider,
      timeoutMs: env.LLM_TIMEOUT_MS,
      maxOutputTokens: env.LLM_MAX_OUTPUT_TOKENS,
    },
  };
}
