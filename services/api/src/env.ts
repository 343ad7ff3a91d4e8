import { z } from "zod";
import { RESEARCH_PIPELINE } from "@tracelane/pipeline";
import { stageModelEnvShape } from "@tracelane/pricing";
import { DEFAULT_QUEUE_PREFIX, envQueueShards } from "@tracelane/queue-contract";
import { DEFAULT_RESEARCH_PREFIX } from "@tracelane/research-store";
import { FORECAST_WINDOW_DEFAULT, TRACE_PREFIX_DEFAULT } from "@tracelane/trace-store";
import { envBoolean, envInt, envOptionalString, parseEnv, redisEnvShape, serviceEnvShape, type EnvSource } from "@tracelane/runtime";
import { envNumber } from "@tracelane/runtime";
import { apiKeysFromEnv, DEFAULT_HOST } from "./auth/binding.js";
import { TRACE_READS_ENV } from "./trace-reads.js";
import { WHAT_IF_MAX_TRACES_DEFAULT } from "./what-if.js";
import { checkLimitsEnv, limitsConfig, limitsEnvShape, type LimitsConfig } from "./limits/env.js";

const prefix = (defaultValue: string) =>
  z
    .string()
    .regex(/^[A-Za-z0-9_.:-]{1,100}$/, "must be 1-100 characters of [A-Za-z0-9_.:-]")
    .default(defaultValue);

const TRACE_CONTEXT_TRUST = ["never", "keyed", "always"] as const;

const BYTE_UNITS = { b: 1, kb: 1024, mb: 1024 * 1024 } as const;

/** A size such as `65536`, `64kb` or `1mb` (binary units), parsed to bytes. */
const envBytes = (defaultValue: number, opts: { min: number; max: number }) =>
  z
    .string()
    .optional()
    .transform((v, ctx) => {
      if (v === undefined || v.trim() === "") return defaultValue;
      const m = /^\s*(\d+)\s*(b|kb|mb)?\s*$/i.exec(v);
      if (!m) {
        ctx.addIssue({ code: "custom", message: "must be a size such as 65536, 64kb or 1mb" });
        return z.NEVER;
      }
      return Number(m[1]) * BYTE_UNITS[(m[2]?.toLowerCase() ?? "b") as keyof typeof BYTE_UNITS];
    })
    .pipe(z.number().int().min(opts.min, `must be at least ${opts.min} bytes`).max(opts.max, `must be at most ${opts.max} bytes`));

export const EnvSchema = z.object({
  ...serviceEnvShape,
  ...redisEnvShape,
  PORT: envInt(3000, { min: 0, max: 65_535 }),
  /** Loopback by default; another address without API keys needs ALLOW_UNAUTHENTICATED=true (auth/binding.ts). */
  HOST: z.string().min(1).default(DEFAULT_HOST),
  TRACELANE_QUEUE_PREFIX: prefix(DEFAULT_QUEUE_PREFIX),
  TRACELANE_QUEUE_SHARDS: envQueueShards(),
  TRACELANE_RESEARCH_PREFIX: prefix(DEFAULT_RESEARCH_PREFIX),
  /** Key prefix the trace-collector writes traces under (read by GET /v1/traces). */
  TRACELANE_TRACE_PREFIX: prefix(TRACE_PREFIX_DEFAULT),
  /** How long a research and its events are kept after their last change. */
  RESEARCH_TTL_SECONDS: envInt(7 * 24 * 3600, { min: 60 }),
  MAX_QUERY_CHARS: envInt(4000, { min: 1, max: 1_000_000 }),
  /** Request body limit: bytes, or with a kb/mb suffix (64kb by default). */
  MAX_BODY_BYTES: envBytes(64 * 1024, { min: 1024, max: 16 * 1024 * 1024 }),
  /** Public Jaeger UI base URL; trace responses link to it when set. */
  JAEGER_UI_URL: envOptionalString().pipe(z.string().url("must be a URL such as http://localhost:16686").optional()),
  SSE_POLL_MS: envInt(100, { min: 10, max: 10_000 }),
  SSE_HEARTBEAT_MS: envInt(15_000, { min: 1_000, max: 300_000 }),
  /** How often to re-publish researches whose first job may have been lost (0: never). */
  LOST_ENQUEUE_CHECK_MS: envInt(30_000, { min: 0 }),
  /** How long a research may stay queued before that check publishes its first job again. */
  LOST_ENQUEUE_MIN_AGE_MS: envInt(60_000, { min: 1_000 }),
  /** How long POST /v1/research waits for the enqueue before answering 503. */
  ENQUEUE_TIMEOUT_MS: envInt(5_000, { min: 100, max: 60_000 }),
  /** Rate limits, MAX_QUEUE_DEPTH, event stream caps, HTTP timeouts, CORS_ORIGINS (limits/env.ts). */
  ...limitsEnvShape,
  /** API keys: comma-separated `<key> [name] [admin|member]` entries (see packages/api-keys). Unset: no auth, loopback only. */
  API_KEYS: envOptionalString(),
  /** A file of API keys, one `<key> [name] [admin|member]` per line (`#` comments). */
  API_KEYS_FILE: envOptionalString(),
  /** Without API keys, listen on a non-loopback HOST anyway (everyone who reaches it can read and cancel everything). */
  ALLOW_UNAUTHENTICATED: envBoolean(false),
  /** GET /metrics needs an API key too (it is open by default, for Prometheus). */
  METRICS_REQUIRE_KEY: envBoolean(false),
  /** Read and health requests (GET/HEAD) start traces of their own; off by default (see trace-reads.ts). */
  TRACELANE_TRACE_READS: TRACE_READS_ENV,
  /** The workers' price table (unset: the built-in one): which models are priced, so allowed by default. */
  TRACELANE_PRICE_TABLE: envOptionalString(),
  /** Most traces one GET /v1/stats/what-if reads (newest first); beyond it the answer is marked truncated. */
  TRACELANE_WHAT_IF_MAX_TRACES: envInt(WHAT_IF_MAX_TRACES_DEFAULT, { min: 1, max: 1_000_000 }),
  /** Each stage's <STAGE>_MODEL, <STAGE>_FALLBACK_MODEL (as its worker has them) and <STAGE>_ALLOWED_MODELS. */
  ...stageModelEnvShape(RESEARCH_PIPELINE.stages),
  /** maxCostUsd of a research whose request sets none (0: no budget). */
  DEFAULT_MAX_COST_USD: envNumber(0, { min: 0, max: 10_000 }),
  /** The submit-time estimate needs this many completed researches per stage (on its model); fewer: no estimate. */
  FORECAST_MIN_SAMPLES: envInt(5, { min: 1, max: 10_000 }),
  /** The most recent completed researches per stage the estimate reads (the trace-collector keeps as many). */
  TRACELANE_FORECAST_WINDOW: envInt(FORECAST_WINDOW_DEFAULT, { min: 1, max: 10_000 }),
  /** Most one API key (or client address, without keys) may spend on model calls per UTC day (0: no cap). */
  DAILY_SPEND_CAP_USD: envNumber(0, { min: 0, max: 1_000_000 }),
  /** Whose incoming traceparent the api continues: nobody, callers with a valid API key, or everyone. */
  TRUST_INCOMING_TRACE_CONTEXT: z
    .enum(TRACE_CONTEXT_TRUST, { message: `must be one of ${TRACE_CONTEXT_TRUST.join(", ")}` })
    .default("keyed"),
});

/** With the checks across variables (limits/env.ts). */
const CheckedEnvSchema = EnvSchema.superRefine(checkLimitsEnv);

export type Env = z.infer<typeof EnvSchema>;

/** TRUST_INCOMING_TRACE_CONTEXT values; `keyed` with no API keys configured trusts nobody. */
export type TraceContextTrust = (typeof TRACE_CONTEXT_TRUST)[number];

/** Parse the api's environment (default process.env); throws an EnvError naming each bad variable. */
export function loadEnv(source: EnvSource = process.env): Env {
  const env = parseEnv(CheckedEnvSchema, source);
  // A bad API_KEYS / API_KEYS_FILE fails here, naming the variable, before anything connects.
  apiKeysFromEnv(env);
  return env;
}

/** The part of the configuration the HTTP app needs. */
export interface AppConfig {
  limits: LimitsConfig;
  maxQueryChars: number;
  maxBodyBytes: number;
  ssePollMs: number;
  sseHeartbeatMs: number;
  enqueueTimeoutMs: number;
  /** GET /metrics needs an API key (METRICS_REQUIRE_KEY). */
  metricsRequireKey: boolean;
  /** maxCostUsd for a request that sets none; 0: none. */
  defaultMaxCostUsd: number;
  /** Per spender (API key, else client address) per UTC day; 0: no cap. */
  dailySpendCapUsd: number;
  trustIncomingTraceContext: TraceContextTrust;
}

export function appConfig(env: Env): AppConfig {
  return {
    limits: limitsConfig(env),
    maxQueryChars: env.MAX_QUERY_CHARS,
    maxBodyBytes: env.MAX_BODY_BYTES,
    ssePollMs: env.SSE_POLL_MS,
    sseHeartbeatMs: env.SSE_HEARTBEAT_MS,
    enqueueTimeoutMs: env.ENQUEUE_TIMEOUT_MS,
    metricsRequireKey: env.METRICS_REQUIRE_KEY,
    defaultMaxCostUsd: env.DEFAULT_MAX_COST_USD,
    dailySpendCapUsd: env.DAILY_SPEND_CAP_USD,
    trustIncomingTraceContext: env.TRUST_INCOMING_TRACE_CONTEXT,
  };
}
