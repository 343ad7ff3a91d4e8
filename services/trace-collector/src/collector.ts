import type { RedisClient } from "@tracelane/runtime";
import type { ApiKeys } from "@tracelane/api-keys";
import type { PriceSource } from "@tracelane/pricing";
import type { TracingStatsLike } from "@tracelane/metrics";
import { ResearchStore } from "@tracelane/research-store";
import type { SpanRecord } from "@tracelane/trace-store";
import { SPAN_STREAM_SHARDS_DEFAULT } from "@tracelane/tracing";
import { WebhookAlerter, type WebhookOptions } from "./alerts/webhook.js";
import type { AnomalyRules } from "./anomalies/registry.js";
import { createAssembler, type Assembler } from "./assemble/assembler.js";
import { createHttpApp } from "./http/app.js";
import { OtlpDecodeError } from "./ingest/otlp-common.js";
import { decodeOtlpJson } from "./ingest/otlp-json.js";
import { StreamConsumer, type StreamEntry } from "./ingest/stream-consumer.js";
import { createCollectorMetrics, type CollectorMetrics } from "./metrics.js";
import { createRepricer, type Repricer } from "./reprice/repricer.js";
import { startRepriceWorker } from "./reprice/worker.js";
import { CollectorStats } from "./stats.js";
import { Sweeper } from "./sweeper.js";

type Log = {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
};

/**
 * Stream entries -> spans -> assembler. An entry that is not OTLP/JSON can never succeed: it is
 * counted, logged and acknowledged with the batch. A storage failure throws, so the whole batch
 * stays pending and is retried.
 */
export function createStreamHandler(assembler: Assembler, stats: CollectorStats, logger?: Pick<Log, "warn">) {
  return async (entries: StreamEntry[]): Promise<void> => {
    const spans: SpanRecord[] = [];
    for (const entry of entries) {
      const otlp = entry.fields.otlp;
      if (otlp === undefined) {
        stats.badEntries++;
        logger?.warn({ entryId: entry.id, fields: Object.keys(entry.fields) }, "span stream entry without an otlp field; skipped");
        continue;
      }
      try {
        const decoded = decodeOtlpJson(otlp);
        for (const s of decoded.spans) spans.push(s);
        stats.rejectedSpans += decoded.rejected.length;
      } catch (err) {
        if (!(err instanceof OtlpDecodeError)) throw err;
        stats.badEntries++;
        logger?.warn({ entryId: entry.id, reason: err.message }, "span stream entry is not OTLP/JSON; skipped");
      }
    }
    await assembler.ingest(spans);
  };
}

export interface CollectorOptions {
  /** Commands (assembly, HTTP, sweeps). */
  redis: RedisClient;
  /** The consumer's connection; each shard's reader blocks (XREADGROUP BLOCK) on a duplicate of it. */
  consumerRedis: RedisClient;
  /** TRACELANE_SPAN_STREAM: the base name of the span stream. */
  stream: string;
  /** TRACELANE_SPAN_STREAM_SHARDS; default SPAN_STREAM_SHARDS_DEFAULT (the exporters' default). */
  shards?: number;
  prefix: string;
  anomalyStream: string;
  anomalyStreamMaxLen: number;
  ttlSeconds: number;
  maxSpansPerTrace: number;
  /** The price book (reloads) or a fixed table; each call is priced at its span's start by what is in force. */
  prices: PriceSource;
  rules: AnomalyRules;
  consumer: string;
  batchSize: number;
  /** Traces kept in memory between batches (AssemblerOptions.recentTraces). */
  recentTraces?: number;
  blockMs: number;
  claimIdleMs: number;
  claimIntervalMs: number;
  deleteAcked: boolean;
  sweepIntervalMs: number;
  webhook?: WebhookOptions;
  logger?: Log;
  /** This process's span export counts, for GET /metrics. */
  tracingStats?: () => TracingStatsLike;
  /** API_KEYS / API_KEYS_FILE: when enabled, POST /v1/traces needs a key, and OTLP spans join a trace only with its owner's. */
  apiKeys?: ApiKeys;
  /** METRICS_REQUIRE_KEY: /metrics and /stats need a key too. */
  metricsRequireKey?: boolean;
  /** AssemblerOptions.immediateAssemblySpans / assemblyIntervalMs / maxTraceDepth. */
  immediateAssemblySpans?: number;
  assemblyIntervalMs?: number;
  /** AssemblerOptions.forecastWindow / forecastSettleMs. */
  forecastWindow?: number;
  forecastSettleMs?: number;
  maxTraceDepth?: number;
  /**
   * Consume the reprice queue (POST /v1/admin/reprice) under TRACELANE_QUEUE_PREFIX, writing re-priced research
   * costs under TRACELANE_RESEARCH_PREFIX, REPRICE_BATCH_TRACES traces per step. Absent: no reprice worker.
   */
  reprice?: { queuePrefix: string; researchPrefix: string; batchSize?: number };
}

export interface Collector {
  stats: CollectorStats;
  assembler: Assembler;
  consumer: StreamConsumer;
  alerter: WebhookAlerter | undefined;
  sweeper: Sweeper;
  /** GET /metrics: LLM metrics derived from the stored spans, ingest counters, process metrics. */
  metrics: CollectorMetrics;
  app: ReturnType<typeof createHttpApp>;
  /** Re-prices stored traces (the reprice worker's work). */
  repricer: Repricer;
  /** Create the consumer group on every shard, start the consumer's shard loops, the expiry sweeper and the reprice worker. */
  start(): Promise<void>;
  /** Stop the reprice worker after its current step (shutdown; safe to call twice). */
  stopReprice(): Promise<void>;
}

/** Wire one collector: stream consumer + OTLP/HTTP + assembler + alerts + sweeper. */
export function createCollector(o: CollectorOptions): Collector {
  const stats = new CollectorStats();
  const logger = o.logger;
  const shards = o.shards ?? SPAN_STREAM_SHARDS_DEFAULT;
  const alerter = o.webhook ? new WebhookAlerter({ ...o.webhook, ...(logger ? { logger } : {}) }) : undefined;
  const metrics = createCollectorMetrics(stats, o.tracingStats, () => o.prices.version);
  // A metrics failure must not fail the batch (it would be retried, and its spans then count as duplicates).
  let metricsFailed = false;
  const guarded = (record: () => void) => {
    try {
      record();
    } catch (err) {
      if (!metricsFailed) logger?.error({ err }, "recording metrics failed; ingestion goes on (logged once)");
      metricsFailed = true;
    }
  };
  const assembler = createAssembler({
    redis: o.redis,
    prefix: o.prefix,
    ttlSeconds: o.ttlSeconds,
    maxSpansPerTrace: o.maxSpansPerTrace,
    prices: o.prices,
    rules: o.rules,
    anomalyStream: o.anomalyStream,
    anomalyStreamMaxLen: o.anomalyStreamMaxLen,
    ...(o.recentTraces !== undefined ? { recentTraces: o.recentTraces } : {}),
    ...(o.immediateAssemblySpans !== undefined ? { immediateAssemblySpans: o.immediateAssemblySpans } : {}),
    ...(o.assemblyIntervalMs !== undefined ? { assemblyIntervalMs: o.assemblyIntervalMs } : {}),
    ...(o.forecastWindow !== undefined ? { forecastWindow: o.forecastWindow } : {}),
    ...(o.forecastSettleMs !== undefined ? { forecastSettleMs: o.forecastSettleMs } : {}),
    ...(o.maxTraceDepth !== undefined ? { maxTraceDepth: o.maxTraceDepth } : {}),
    ...(logger ? { logger } : {}),
    stats,
    onNewAnomalies: (a) => {
      alerter?.enqueue(a);
      guarded(() => metrics.recordAnomalies(a));
    },
    onStored: (fresh, stages, nowMs) => guarded(() => metrics.recordStored(fresh, stages, nowMs)),
  });
  const consumer = new StreamConsumer({
    redis: o.consumerRedis,
    stream: o.stream,
    shards,
    consumer: o.consumer,
    batchSize: o.batchSize,
    blockMs: o.blockMs,
    claimIdleMs: o.claimIdleMs,
    claimIntervalMs: o.claimIntervalMs,
    deleteAcked: o.deleteAcked,
    handle: createStreamHandler(assembler, stats, logger),
    stats,
    ...(logger ? { logger } : {}),
  });
  const sweeper = new Sweeper(o.redis, o.prefix, o.sweepIntervalMs, stats, logger);
  const repricer = createRepricer({
    redis: o.redis,
    keys: assembler.keys,
    prices: o.prices,
    research: new ResearchStore(o.redis, o.reprice ? { prefix: o.reprice.researchPrefix } : {}),
    ...(o.maxTraceDepth !== undefined ? { maxTraceDepth: o.maxTraceDepth } : {}),
    ...(o.reprice?.batchSize !== undefined ? { batchSize: o.reprice.batchSize } : {}),
  });
  let repriceWorker: { close(): Promise<void> } | undefined;
  let repriceStopped: Promise<void> | undefined;
  const app = createHttpApp({
    redis: o.redis,
    stats,
    stream: o.stream,
    shards,
    group: consumer.group,
    tracesIndexKeys: assembler.keys.partitions.map((part) => part.idxStart),
    ingest: (spans, origin) => assembler.ingest(spans, origin),
    ...(o.apiKeys ? { apiKeys: o.apiKeys } : {}),
    ...(o.metricsRequireKey ? { metricsRequireKey: true } : {}),
    metricsHandler: metrics.service.handler,
    ...(alerter ? { webhookStats: () => alerter.stats() } : {}),
    ...(logger ? { logger } : {}),
  });
  return {
    stats,
    assembler,
    consumer,
    alerter,
    sweeper,
    metrics,
    app,
    repricer,
    async start() {
      await consumer.ensureGroup();
      consumer.start();
      sweeper.start();
      if (o.reprice) {
        repriceWorker = startRepriceWorker({
          connection: o.redis,
          queuePrefix: o.reprice.queuePrefix,
          repricer,
          ...(logger ? { logger } : {}),
        });
      }
    },
    stopReprice: () => (repriceStopped ??= repriceWorker?.close() ?? Promise.resolve()),
  };
}

// The library face of the service (tests, benchmarks and the api's tests build collectors from it).
export { createAssembler, type Assembler, type AssemblerOptions, type IngestOrigin, type IngestResult } from "./assemble/assembler.js";
export { summarizeTrace, traceStatus } from "./assemble/summary.js";
export { StreamConsumer, streamLag, CONSUMER_GROUP, type StreamConsumerOptions, type StreamEntry } from "./ingest/stream-consumer.js";
// The span stream's naming, for the benchmarks and tests that write or read it beside a collector.
export { SPAN_STREAM_SHARDS_DEFAULT, spanStreamShards, spanStreamShardOf } from "@tracelane/tracing";
export { decodeOtlpJson } from "./ingest/otlp-json.js";
export { decodeOtlpProtobuf } from "./ingest/otlp-protobuf.js";
export { OtlpDecodeError } from "./ingest/otlp-common.js";
export { DEFAULT_RULES, RULES, withSettings, type AnomalyRules } from "./anomalies/registry.js";
export { rulesDocTable } from "./anomalies/docs.js";
export { loadRules } from "./anomalies/config.js";
export { WebhookAlerter, type WebhookOptions, type AlertPayload } from "./alerts/webhook.js";
export { CollectorStats } from "./stats.js";
export { createCollectorMetrics, type CollectorMetrics } from "./metrics.js";
export { Sweeper } from "./sweeper.js";
