import {
  envBoolean,
  envClusterNodes,
  envInt,
  envNumber,
  envOptionalString,
  parseEnv,
  REDIS_URL_DEFAULT,
  redisUrlSchema,
} from "@tracelane/runtime";
import { z } from "zod";
import { CONTENT_CAPTURE_MODES } from "./content.js";
import { envSpanStreamShards, SPAN_STREAM_DEFAULT } from "./span-stream.js";

/** The samplers of the OpenTelemetry env spec that make sense without a remote config service. */
export const SAMPLER_NAMES = [
  "always_on",
  "always_off",
  "traceidratio",
  "parentbased_always_on",
  "parentbased_always_off",
  "parentbased_traceidratio",
] as const;
export type SamplerName = (typeof SAMPLER_NAMES)[number];

// Compose passes `VAR=` for "unset"; z.coerce would turn "" into 0 and fail on a min() with a confusing message.
const blankIsUnset = <S extends z.ZodType>(schema: S) =>
  z.preprocess((v) => (typeof v === "string" && v.trim() === "" ? undefined : v), schema);

/** A flag whose default depends on other variables: undefined when unset. */
const envOptionalBoolean = () =>
  blankIsUnset(
    z
      .enum(["true", "false", "1", "0", "yes", "no", "on", "off"])
      .optional()
      .transform((v) => (v === undefined ? undefined : ["true", "1", "yes", "on"].includes(v))),
  );

// gRPC needs scheme + host + port; "http://" selects an insecure channel, "https://" TLS.
const otlpEndpoint = () =>
  envOptionalString().refine((v) => v === undefined || /^https?:\/\/[^/\s]+/.test(v), {
    message: "must be a URL such as http://jaeger:4317",
  });

const schema = z
  .object({
    OTEL_SDK_DISABLED: envBoolean(false),
    OTEL_SERVICE_NAME: envOptionalString(),
    DEPLOYMENT_ENVIRONMENT: envOptionalString(),
    TRACELANE_ENV: envOptionalString(),

    OTEL_TRACES_SAMPLER: blankIsUnset(z.enum(SAMPLER_NAMES).default("parentbased_always_on")),
    OTEL_TRACES_SAMPLER_ARG: blankIsUnset(envNumber(1, { min: 0, max: 1 })),

    OTEL_EXPORTER_OTLP_ENDPOINT: otlpEndpoint(),
    OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: otlpEndpoint(),
    /** Unset: on exactly when an endpoint is set, so local runs without Jaeger stay quiet. */
    TRACELANE_OTLP_ENABLED: envOptionalBoolean(),
    OTEL_EXPORTER_OTLP_TIMEOUT: blankIsUnset(envInt(10_000, { min: 1 })),

    REDIS_URL: redisUrlSchema().optional(),
    /** The services' own REDIS_CLUSTER_NODES: a service on a cluster exports its spans to that cluster. */
    REDIS_CLUSTER_NODES: envClusterNodes(),
    TRACELANE_SPAN_STREAM_ENABLED: envBoolean(true),
    TRACELANE_SPAN_STREAM: blankIsUnset(z.string().default(SPAN_STREAM_DEFAULT)),
    /** Spans are split over this many streams by trace id; the trace-collector must read the same number. */
    TRACELANE_SPAN_STREAM_SHARDS: blankIsUnset(envSpanStreamShards()),
    TRACELANE_SPAN_STREAM_MAXLEN: blankIsUnset(envInt(1_000_000, { min: 1 })),

    // Sized for benchmark load (1,000+ pipelines/s x ~8 spans): 100k spans absorb a multi-second exporter stall.
    OTEL_BSP_MAX_QUEUE_SIZE: blankIsUnset(envInt(100_000, { min: 1 })),
    OTEL_BSP_MAX_EXPORT_BATCH_SIZE: blankIsUnset(envInt(2_048, { min: 1 })),
    OTEL_BSP_SCHEDULE_DELAY: blankIsUnset(envInt(200, { min: 0 })),
    OTEL_BSP_EXPORT_TIMEOUT: blankIsUnset(envInt(30_000, { min: 1 })),

    TRACELANE_CAPTURE_CONTENT: blankIsUnset(z.enum(CONTENT_CAPTURE_MODES).default("none")),
  })
  .superRefine((env, ctx) => {
    if (env.OTEL_BSP_MAX_EXPORT_BATCH_SIZE > env.OTEL_BSP_MAX_QUEUE_SIZE) {
      ctx.addIssue({
        code: "custom",
        path: ["OTEL_BSP_MAX_EXPORT_BATCH_SIZE"],
        message: `must not exceed OTEL_BSP_MAX_QUEUE_SIZE (${env.OTEL_BSP_MAX_QUEUE_SIZE})`,
      });
    }
  });

/** Where and how the Redis stream destination writes. */
export interface SpanStreamConfig {
  redisUrl: string;
  /** Seeds of a Redis Cluster (REDIS_CLUSTER_NODES); redisUrl then lends credentials and TLS only. */
  clusterNodes: readonly { host: string; port: number }[] | undefined;
  /** Base name; the entries go to spanStreamShards(stream, shards). */
  stream: string;
  shards: number;
  /** MAXLEN ~ per shard. */
  maxLen: number;
}

export interface BatchSettings {
  maxQueueSize: number;
  maxExportBatchSize: number;
  scheduledDelayMillis: number;
  exportTimeoutMillis: number;
}

/** Everything startTracing needs, resolved from the environment once. */
export interface TracingConfig {
  disabled: boolean;
  serviceName: string;
  serviceVersion: string | undefined;
  deploymentEnvironment: string;
  sampler: { name: SamplerName; ratio: number };
  /** undefined: the OTLP/gRPC (Jaeger) destination is off. */
  otlp: { url: string; timeoutMillis: number } | undefined;
  /** undefined: the Redis stream (trace-collector) destination is off. */
  spanStream: SpanStreamConfig | undefined;
  batch: BatchSettings;
  captureContent: (typeof CONTENT_CAPTURE_MODES)[number];
}

/** The OTLP/gRPC default when TRACELANE_OTLP_ENABLED=true without an endpoint (spec default). */
const OTLP_GRPC_DEFAULT_URL = "http://localhost:4317";

/** Validate the tracing environment; throws EnvError naming each bad variable. */
export function resolveTracingConfig(
  opts: { serviceName: string; serviceVersion?: string; redisUrl?: string },
  source: Record<string, string | undefined>,
): TracingConfig {
  const env = parseEnv(schema, source);
  const endpoint = env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT ?? env.OTEL_EXPORTER_OTLP_ENDPOINT;
  const otlpEnabled = env.TRACELANE_OTLP_ENABLED ?? endpoint !== undefined;
  const clusterNodes = env.REDIS_CLUSTER_NODES;
  // Cluster seeds alone are a Redis to export to, as for the services themselves (REDIS_URL has a default there).
  const redisUrl = opts.redisUrl ?? env.REDIS_URL ?? (clusterNodes ? REDIS_URL_DEFAULT : undefined);
  return {
    disabled: env.OTEL_SDK_DISABLED,
    serviceName: env.OTEL_SERVICE_NAME ?? opts.serviceName,
    serviceVersion: opts.serviceVersion,
    deploymentEnvironment: env.DEPLOYMENT_ENVIRONMENT ?? env.TRACELANE_ENV ?? "development",
    sampler: { name: env.OTEL_TRACES_SAMPLER, ratio: env.OTEL_TRACES_SAMPLER_ARG },
    otlp: otlpEnabled ? { url: endpoint ?? OTLP_GRPC_DEFAULT_URL, timeoutMillis: env.OTEL_EXPORTER_OTLP_TIMEOUT } : undefined,
    spanStream:
      redisUrl !== undefined && env.TRACELANE_SPAN_STREAM_ENABLED
        ? {
            redisUrl,
            clusterNodes,
            stream: env.TRACELANE_SPAN_STREAM,
            shards: env.TRACELANE_SPAN_STREAM_SHARDS,
            maxLen: env.TRACELANE_SPAN_STREAM_MAXLEN,
          }
        : undefined,
    batch: {
      maxQueueSize: env.OTEL_BSP_MAX_QUEUE_SIZE,
      maxExportBatchSize: env.OTEL_BSP_MAX_EXPORT_BATCH_SIZE,
      scheduledDelayMillis: env.OTEL_BSP_SCHEDULE_DELAY,
      exportTimeoutMillis: env.OTEL_BSP_EXPORT_TIMEOUT,
    },
    captureContent: env.TRACELANE_CAPTURE_CONTENT,
  };
}
