import { hostname } from "node:os";
import { envBoolean, envInt, envOptionalString, parseEnv, redisEnvShape, serviceEnvShape } from "@tracelane/runtime";
import { DEFAULT_QUEUE_PREFIX } from "@tracelane/queue-contract";
import { DEFAULT_RESEARCH_PREFIX } from "@tracelane/research-store";
import { ANOMALY_STREAM_DEFAULT, FORECAST_WINDOW_DEFAULT, TRACE_PREFIX_DEFAULT } from "@tracelane/trace-store";
import { envSpanStreamShards, SPAN_STREAM_DEFAULT } from "@tracelane/tracing";
import { z } from "zod";

// Compose passes `VAR=` for "unset"; without this z.coerce would read "" as 0.
const blankIsUnset = <S extends z.ZodType>(schema: S) =>
  z.preprocess((v) => (typeof v === "string" && v.trim() === "" ? undefined : v), schema);

const optionalUrl = () =>
  envOptionalString().refine((v) => v === undefined || /^https?:\/\/[^/\s]+/.test(v), {
    message: "must be a URL such as http://host:port/path",
  });

const schema = z
  .object({
    ...serviceEnvShape,
    ...redisEnvShape,
    PORT: blankIsUnset(envInt(4319, { min: 0, max: 65_535 })),
    TRACELANE_SPAN_STREAM: blankIsUnset(z.string().min(1).default(SPAN_STREAM_DEFAULT)),
    /** As many shards as the services write (their tracing reads the same variable): a shard not read is never assembled. */
    TRACELANE_SPAN_STREAM_SHARDS: blankIsUnset(envSpanStreamShards()),
    TRACELANE_TRACE_PREFIX: blankIsUnset(z.string().min(1).default(TRACE_PREFIX_DEFAULT)),
    TRACELANE_ANOMALY_STREAM: blankIsUnset(z.string().min(1).default(ANOMALY_STREAM_DEFAULT)),
    TRACELANE_ANOMALY_STREAM_MAXLEN: blankIsUnset(envInt(10_000, { min: 1 })),
    TRACELANE_TRACE_TTL_SECONDS: blankIsUnset(envInt(86_400, { min: 1 })),
    TRACELANE_MAX_SPANS_PER_TRACE: blankIsUnset(envInt(5_000, { min: 1, max: 1_000_000 })),
    TRACELANE_PRICE_TABLE: envOptionalString(),
    /** Where the reprice queue lives (the api adds its jobs) and the research records a reprice updates: as the api has them. */
    TRACELANE_QUEUE_PREFIX: blankIsUnset(z.string().min(1).default(DEFAULT_QUEUE_PREFIX)),
    TRACELANE_RESEARCH_PREFIX: blankIsUnset(z.string().min(1).default(DEFAULT_RESEARCH_PREFIX)),
    /** Traces a reprice reads, re-prices and writes per step (and between two progress reports). */
    REPRICE_BATCH_TRACES: blankIsUnset(envInt(200, { min: 1, max: 5_000 })),

    // The rules' own variables (TRACELANE_RULE_*, TRACELANE_RULES_DISABLED) are declared by each
    // rule in src/anomalies/rules/ and read by loadRules, at boot as well.
    TRACELANE_ANOMALY_RULES: envOptionalString(),

    ALERT_WEBHOOK_URL: optionalUrl(),
    ALERT_WEBHOOK_TIMEOUT_MS: blankIsUnset(envInt(5_000, { min: 1 })),
    ALERT_WEBHOOK_MAX_ATTEMPTS: blankIsUnset(envInt(5, { min: 1, max: 20 })),
    ALERT_QUEUE_SIZE: blankIsUnset(envInt(1_000, { min: 1 })),
    JAEGER_UI_URL: optionalUrl(),

    COLLECTOR_CONSUMER_NAME: envOptionalString(),
    COLLECTOR_BATCH_SIZE: blankIsUnset(envInt(200, { min: 1, max: 10_000 })),
    COLLECTOR_RECENT_TRACES: blankIsUnset(envInt(2_000, { min: 0, max: 1_000_000 })),
    /** Never 0: XREADGROUP BLOCK 0 would wait forever and stall shutdown. */
    COLLECTOR_BLOCK_MS: blankIsUnset(envInt(1_000, { min: 1, max: 60_000 })),
    COLLECTOR_CLAIM_IDLE_MS: blankIsUnset(envInt(30_000, { min: 1 })),
    COLLECTOR_CLAIM_INTERVAL_MS: blankIsUnset(envInt(5_000, { min: 1 })),
    COLLECTOR_SWEEP_INTERVAL_MS: blankIsUnset(envInt(60_000, { min: 100 })),
    COLLECTOR_DELETE_ACKED: envBoolean(true),
    COLLECTOR_ALERT_FLUSH_MS: blankIsUnset(envInt(2_000, { min: 0 })),

    /** The api's keys (packages/api-keys): when set, POST /v1/traces needs `Authorization: Bearer <key>`. */
    API_KEYS: envOptionalString(),
    API_KEYS_FILE: envOptionalString(),
    /** With keys set, /metrics and /stats need a key too (default: open, like the api's /metrics). */
    METRICS_REQUIRE_KEY: envBoolean(false),
    /** A trace above this many spans is re-assembled at most once per COLLECTOR_ASSEMBLY_INTERVAL_MS per this many spans. */
    COLLECTOR_IMMEDIATE_ASSEMBLY_SPANS: blankIsUnset(envInt(1_000, { min: 1, max: 1_000_000 })),
    COLLECTOR_ASSEMBLY_INTERVAL_MS: blankIsUnset(envInt(1_000, { min: 10, max: 60_000 })),
    /** Completed researches kept per (stage, model) for the api's submit-time forecast. */
    TRACELANE_FORECAST_WINDOW: blankIsUnset(envInt(FORECAST_WINDOW_DEFAULT, { min: 1, max: 10_000 })),
    /** How long after a research completes its per-stage totals are recorded (its other processes' spans arrive first). */
    COLLECTOR_FORECAST_SETTLE_MS: blankIsUnset(envInt(5_000, { min: 0, max: 600_000 })),
    /** Spans deeper than this in their trace's parent chain are cut from the tree and counted. */
    TRACELANE_MAX_TRACE_DEPTH: blankIsUnset(envInt(1_000, { min: 1, max: 100_000 })),
  })
  .superRefine((env, ctx) => {
    if (env.TRACELANE_ANOMALY_STREAM === env.TRACELANE_SPAN_STREAM) {
      ctx.addIssue({
        code: "custom",
        path: ["TRACELANE_ANOMALY_STREAM"],
        message: "must differ from TRACELANE_SPAN_STREAM (anomalies would be read back as spans)",
      });
    }
    // Keys under the trace prefix belong to the store's layout (e.g. {prefix}:anomalies is a zset).
    for (const name of ["TRACELANE_SPAN_STREAM", "TRACELANE_ANOMALY_STREAM"] as const) {
      if (env[name].startsWith(`${env.TRACELANE_TRACE_PREFIX}:`)) {
        ctx.addIssue({
          code: "custom",
          path: [name],
          message: `must not live under TRACELANE_TRACE_PREFIX ("${env.TRACELANE_TRACE_PREFIX}:")`,
        });
      }
    }
  })
  .transform((env) => ({ ...env, COLLECTOR_CONSUMER_NAME: env.COLLECTOR_CONSUMER_NAME ?? `${hostname()}-${process.pid}` }));

export type CollectorEnv = z.infer<typeof schema>;

/** The collector's configuration; throws EnvError naming each bad variable. */
export function loadEnv(source: Record<string, string | undefined> = process.env): CollectorEnv {
  return parseEnv(schema, source);
}
