import { ATTR_STAGE } from "@tracelane/pipeline";
import {
  ATTR_ERROR_TYPE,
  ATTR_GEN_AI_OPERATION_NAME,
  ATTR_GEN_AI_PROVIDER_NAME,
  ATTR_GEN_AI_REQUEST_MODEL,
  ATTR_HTTP_REQUEST_METHOD,
  ATTR_HTTP_RESPONSE_STATUS_CODE,
  ATTR_HTTP_ROUTE,
  ATTR_MESSAGING_DESTINATION_NAME,
  ATTR_PRICE_VERSION,
  ATTR_SERVER_ADDRESS,
} from "@tracelane/tracing/attributes";
import { prometheusLabel, prometheusName, type MetricType } from "./names.js";

/**
 * Every metric a tracelane service exposes, spelled once: its OpenTelemetry instrument name
 * (semantic conventions where one exists, `tracelane.*` where none does), unit, attributes and
 * buckets. The Prometheus names and labels are derived (names.ts), and so is the README's table.
 */

// Metric attributes that are not span attributes. `gen_ai.token.type` is semconv; the rest are ours.
export const ATTR_GEN_AI_TOKEN_TYPE = "gen_ai.token.type";
/** What became of a span: stored, duplicate, dropped, rejected (collector); exported, dropped (exporters). */
export const ATTR_SPAN_OUTCOME = "tracelane.span.outcome";
export const ATTR_ANOMALY_TYPE = "tracelane.anomaly.type";
/** completed, failed (for good), retried (failed, will run again), stalled. */
export const ATTR_JOB_OUTCOME = "tracelane.job.outcome";
/** BullMQ job state: waiting, active, delayed, failed. */
export const ATTR_QUEUE_STATE = "tracelane.queue.state";
export const ATTR_RESEARCH_STATUS = "tracelane.research.status";
/** Where a service's span exporter sends spans: otlp (Jaeger), redis (the collector's stream). */
export const ATTR_EXPORT_DESTINATION = "tracelane.export.destination";
/** Why the api turned a request away: rate_limited, new_research_rate_limited, queue_full, sse_streams_per_key, sse_streams_total, request_timeout. */
export const ATTR_REJECTION_REASON = "tracelane.rejection.reason";
/** The metric whose scrape-time collection failed. */
export const ATTR_METRIC_NAME = "tracelane.metric.name";

/** gen_ai.client.token.usage: the semconv's ExplicitBucketBoundaries (powers of 4). */
export const GEN_AI_TOKEN_BUCKETS = [1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864] as const;
/** gen_ai.client.operation.duration: the semconv's ExplicitBucketBoundaries (10 ms doubling), seconds. */
export const GEN_AI_DURATION_BUCKETS = [0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92] as const;
/** http.server.request.duration: the HTTP semconv's ExplicitBucketBoundaries, seconds. */
export const HTTP_DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10] as const;
/** Span end -> stored: the span processor batches for 200 ms, so most land under a second. */
const INGEST_LAG_BUCKETS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300] as const;

export type MetricSource = "trace-collector" | "api" | "stage workers" | "every service";

export interface MetricDefinition<A extends string = string> {
  /** OpenTelemetry instrument name. */
  readonly name: string;
  readonly type: MetricType;
  /** UCUM unit; `{...}` is an annotated count (no Prometheus suffix). */
  readonly unit: string;
  readonly description: string;
  /** OpenTelemetry attribute names; each is a label (prometheusLabel). */
  readonly attributes: readonly A[];
  readonly buckets?: readonly number[];
  readonly source: MetricSource;
  /** How to aggregate it across replicas, when plain sum() is wrong. */
  readonly note?: string;
}

/** A definition with its Prometheus name and labels. */
export interface Metric<A extends string = string> extends MetricDefinition<A> {
  readonly prometheus: string;
  readonly labelOf: Readonly<Record<A, string>>;
  /** The labels, in attribute order. */
  readonly labelNames: readonly string[];
}

function metric<const A extends string>(def: MetricDefinition<A>): Metric<A> {
  const labelOf = Object.fromEntries(def.attributes.map((a) => [a, prometheusLabel(a)])) as Record<A, string>;
  return Object.freeze({
    ...def,
    prometheus: prometheusName(def.name, def.unit, def.type),
    labelOf,
    labelNames: def.attributes.map((a) => labelOf[a]),
  });
}

const CALL_ATTRIBUTES = [ATTR_GEN_AI_OPERATION_NAME, ATTR_GEN_AI_PROVIDER_NAME, ATTR_GEN_AI_REQUEST_MODEL, ATTR_STAGE] as const;

export const METRICS = {
  // trace-collector: derived from the spans it stores (each span once, when first stored).
  tokenUsage: metric({
    name: "gen_ai.client.token.usage",
    type: "histogram",
    unit: "{token}",
    description: "Number of input and output tokens used, per model call (OpenTelemetry GenAI semconv).",
    attributes: [...CALL_ATTRIBUTES, ATTR_GEN_AI_TOKEN_TYPE],
    buckets: GEN_AI_TOKEN_BUCKETS,
    source: "trace-collector",
  }),
  operationDuration: metric({
    name: "gen_ai.client.operation.duration",
    type: "histogram",
    unit: "s",
    description: "GenAI operation duration: the model call's span, retries inside it included (OpenTelemetry GenAI semconv).",
    attributes: [...CALL_ATTRIBUTES, ATTR_ERROR_TYPE],
    buckets: GEN_AI_DURATION_BUCKETS,
    source: "trace-collector",
  }),
  cost: metric({
    name: "tracelane.gen_ai.client.cost.usd",
    type: "counter",
    unit: "{USD}",
    description:
      "Cost of model calls in USD, from the collector's price table (unpriced calls add nothing; see the unpriced_model anomaly).",
    attributes: [ATTR_GEN_AI_REQUEST_MODEL, ATTR_GEN_AI_PROVIDER_NAME, ATTR_STAGE],
    source: "trace-collector",
  }),
  anomalies: metric({
    name: "tracelane.collector.anomalies",
    type: "counter",
    unit: "{anomaly}",
    description: "Anomalies detected, by type (each counted once, at its first detection).",
    attributes: [ATTR_ANOMALY_TYPE],
    source: "trace-collector",
  }),
  collectorSpans: metric({
    name: "tracelane.collector.spans",
    type: "counter",
    unit: "{span}",
    description:
      "Spans the collector received, by outcome: stored (first time), duplicate (already stored), dropped (trace over TRACELANE_MAX_SPANS_PER_TRACE), rejected (not a valid span), refused (OTLP span for a trace owned by another key), clamped (stored with values or lists cut to the per-span limits), too_deep (cut from the tree below TRACELANE_MAX_TRACE_DEPTH).",
    attributes: [ATTR_SPAN_OUTCOME],
    source: "trace-collector",
  }),
  ingestLag: metric({
    name: "tracelane.collector.ingest.lag",
    type: "histogram",
    unit: "s",
    description: "From a span's end to the collector storing it (export batching, the stream, the collector's batch).",
    attributes: [],
    buckets: INGEST_LAG_BUCKETS,
    source: "trace-collector",
  }),

  // stage workers
  jobs: metric({
    name: "tracelane.worker.jobs",
    type: "counter",
    unit: "{job}",
    description:
      "Stage job attempts by outcome: completed, retried (failed, will run again), failed (for good), stalled (worker lost its lock).",
    attributes: [ATTR_STAGE, ATTR_JOB_OUTCOME],
    source: "stage workers",
  }),
  jobDuration: metric({
    name: "messaging.process.duration",
    type: "histogram",
    unit: "s",
    description:
      "Duration of one stage job attempt, from BullMQ's processedOn to its end (OpenTelemetry messaging semconv name; GenAI buckets, since a model call dominates it).",
    attributes: [ATTR_MESSAGING_DESTINATION_NAME, ATTR_STAGE, ATTR_ERROR_TYPE],
    buckets: GEN_AI_DURATION_BUCKETS,
    source: "stage workers",
  }),
  modelRetries: metric({
    name: "tracelane.gen_ai.client.retries",
    type: "counter",
    unit: "{retry}",
    description: "HTTP resends inside model calls (429, 5xx, timeouts, dropped connections), before the job's own BullMQ attempts.",
    attributes: [ATTR_GEN_AI_PROVIDER_NAME, ATTR_GEN_AI_REQUEST_MODEL, ATTR_STAGE],
    source: "stage workers",
  }),
  circuitState: metric({
    name: "tracelane.gen_ai.client.circuit.state",
    type: "gauge",
    unit: "",
    description: "Circuit breaker per provider endpoint and model: 0 closed, 1 half-open, 2 open.",
    attributes: [ATTR_GEN_AI_PROVIDER_NAME, ATTR_GEN_AI_REQUEST_MODEL, ATTR_SERVER_ADDRESS, ATTR_STAGE],
    source: "stage workers",
  }),

  // api
  httpDuration: metric({
    name: "http.server.request.duration",
    type: "histogram",
    unit: "s",
    description: "Duration of HTTP requests by route pattern (never the raw path) and status (OpenTelemetry HTTP semconv).",
    attributes: [ATTR_HTTP_REQUEST_METHOD, ATTR_HTTP_ROUTE, ATTR_HTTP_RESPONSE_STATUS_CODE],
    buckets: HTTP_DURATION_BUCKETS,
    source: "api",
  }),
  queueDepth: metric({
    name: "tracelane.queue.depth",
    type: "gauge",
    unit: "{job}",
    description: "Jobs in each stage's queue by state (waiting, active, delayed, failed), read from BullMQ at scrape time.",
    attributes: [ATTR_MESSAGING_DESTINATION_NAME, ATTR_STAGE, ATTR_QUEUE_STATE],
    source: "api",
    note: "every api replica reads the same queues: aggregate with max(), not sum()",
  }),
  researches: metric({
    name: "tracelane.researches",
    type: "gauge",
    unit: "{research}",
    description: "Researches in the research store by status (created within RESEARCH_TTL_SECONDS), read at scrape time.",
    attributes: [ATTR_RESEARCH_STATUS],
    source: "api",
    note: "every api replica reads the same store: aggregate with max(), not sum()",
  }),
  rejections: metric({
    name: "tracelane.http.rejections",
    type: "counter",
    unit: "{request}",
    description:
      "Requests the api turned away before doing their work, by reason: rate_limited and new_research_rate_limited (429), queue_full (503), sse_streams_per_key (429), sse_streams_total (503), request_timeout (408: a request head or body too slow).",
    attributes: [ATTR_REJECTION_REASON],
    source: "api",
  }),

  // every service (through createServiceMetrics)
  exportedSpans: metric({
    name: "tracelane.tracing.spans",
    type: "counter",
    unit: "{span}",
    description: "Spans this process's tracing exported or dropped (queue full, failed export), per destination.",
    attributes: [ATTR_EXPORT_DESTINATION, ATTR_SPAN_OUTCOME],
    source: "every service",
  }),
  failedExports: metric({
    name: "tracelane.tracing.failed_exports",
    type: "counter",
    unit: "{export}",
    description: "Span export batches that failed, per destination.",
    attributes: [ATTR_EXPORT_DESTINATION],
    source: "every service",
  }),
  collectErrors: metric({
    name: "tracelane.metrics.collect.errors",
    type: "counter",
    unit: "{error}",
    description: "Scrape-time reads that failed (e.g. Redis down for queue depth); that metric is absent from the scrape.",
    attributes: [ATTR_METRIC_NAME],
    source: "every service",
  }),
  priceTable: metric({
    name: "tracelane.price_table.info",
    type: "gauge",
    unit: "",
    description:
      "1 for the version of the price table in force (TRACELANE_PRICE_TABLE, reloaded on change and on SIGHUP; a refused file leaves the old version), in each service that prices calls: api, trace-collector, stage workers.",
    attributes: [ATTR_PRICE_VERSION],
    source: "every service",
  }),
} as const;

const cell = (text: string) => text.replaceAll("|", "\\|");

/** The README's metric table, from the catalog (a test checks the README holds exactly this). */
export function metricsDocTable(): string {
  const rows = Object.values(METRICS).map((m: Metric) => {
    const labels = m.attributes.map((a) => `\`${m.labelOf[a]}\``).join(", ") || "—";
    const type = m.buckets ? `histogram (${m.buckets.join(", ")})` : m.type;
    return `| \`${m.prometheus}\` | \`${m.name}\` | ${m.source} | ${type} | ${labels} | ${cell(m.description + (m.note ? ` **${m.note}.**` : ""))} |`;
  });
  return ["| Prometheus | OpenTelemetry | Exposed by | Type (buckets) | Labels | Meaning |", "|---|---|---|---|---|---|", ...rows].join(
    "\n",
  );
}
