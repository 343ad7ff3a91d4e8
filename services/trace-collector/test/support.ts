import { randomUUID } from "node:crypto";
import { ROOT_CONTEXT, SpanKind, SpanStatusCode, trace } from "@opentelemetry/api";
import { resourceFromAttributes } from "@opentelemetry/resources";
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from "@opentelemetry/sdk-trace-base";
import { loadPriceTable } from "@tracelane/pricing";
import { Redis } from "ioredis";
import type { RedisClient } from "@tracelane/runtime";
import { SPAN_STREAM_SHARDS_DEFAULT, spanStreamShardOf } from "@tracelane/tracing";
import { createAssembler, DEFAULT_RULES, withSettings, type AnomalyRules, type AssemblerOptions } from "../src/collector.js";
import { toStreamEntries, type SyntheticSpan } from "../src/testing/synthetic.js";
import { ATTR_RESEARCH_ID, ATTR_STAGE } from "@tracelane/pipeline";
import {
  ATTR_GEN_AI_OPERATION_NAME,
  ATTR_GEN_AI_PROVIDER_NAME,
  ATTR_GEN_AI_REQUEST_MODEL,
  ATTR_GEN_AI_RESPONSE_MODEL,
  ATTR_USAGE_COST_USD,
  ATTR_GEN_AI_USAGE_INPUT_TOKENS,
  ATTR_GEN_AI_USAGE_OUTPUT_TOKENS,
  ATTR_HTTP_REQUEST_METHOD,
  ATTR_HTTP_REQUEST_RESEND_COUNT,
  ATTR_HTTP_RESPONSE_STATUS_CODE,
  ATTR_JOB_ATTEMPT,
  ATTR_MESSAGING_DESTINATION_NAME,
  ATTR_MESSAGING_MESSAGE_ID,
  ATTR_QUEUE_WAIT_MS,
  ATTR_MESSAGING_SYSTEM,
} from "@tracelane/tracing/attributes";

/** A unique key prefix per test, so tests share the run's redis-server without seeing each other. */
export const uniquePrefix = (name: string) => `test:${name}:${randomUUID().slice(0, 8)}`;

export function connect(url: string): Redis {
  const redis = new Redis(url, { maxRetriesPerRequest: 1 });
  redis.on("error", () => {});
  return redis;
}

/** Delete every key under `prefix` (SCAN, not KEYS). */
export async function cleanup(redis: Redis, ...prefixes: string[]): Promise<void> {
  for (const prefix of prefixes) {
    let cursor = "0";
    do {
      const [next, keys] = await redis.scan(cursor, "MATCH", `${prefix}*`, "COUNT", 1000);
      cursor = next;
      if (keys.length > 0) await redis.del(...keys);
    } while (cursor !== "0");
  }
}

/**
 * Write synthetic traces to the span stream the way the services' exporters do: every trace to its own
 * shard (spanStreamShardOf), each service's spans batched into entries. Returns the entries written per shard key.
 */
export async function writeSpanStream(
  redis: RedisClient,
  stream: string,
  traces: readonly SyntheticSpan[][],
  opts: { shards?: number; spansPerEntry?: number } = {},
): Promise<Map<string, number>> {
  const shards = opts.shards ?? SPAN_STREAM_SHARDS_DEFAULT;
  const byShard = new Map<string, SyntheticSpan[][]>();
  for (const trace of traces) {
    const key = spanStreamShardOf(stream, shards, trace[0]!.traceId);
    const list = byShard.get(key);
    if (list) list.push(trace);
    else byShard.set(key, [trace]);
  }
  const written = new Map<string, number>();
  for (const [key, group] of byShard) {
    const entries = toStreamEntries(group, opts.spansPerEntry);
    for (const otlp of entries) await redis.xadd(key, "*", "otlp", otlp);
    written.set(key, entries.length);
  }
  return written;
}

/** The default rules with some settings changed, e.g. `rules({ high_latency: { latencyMs: 500 } })`. */
export function rules(changes: Parameters<typeof withSettings>[1] = {}, disabled: AnomalyRules["disabled"] = []): AnomalyRules {
  return withSettings(DEFAULT_RULES, changes, disabled);
}

export function testAssembler(redis: Redis, prefix: string, overrides: Partial<AssemblerOptions> = {}) {
  return createAssembler({
    redis,
    prefix,
    ttlSeconds: 600,
    maxSpansPerTrace: 5_000,
    prices: loadPriceTable(),
    rules: DEFAULT_RULES,
    anomalyStream: `${prefix}-anomaly-stream`,
    ...overrides,
  });
}

const hr = (ms: number): [number, number] => [Math.floor(ms / 1000), Math.round((ms % 1000) * 1e6)];

/**
 * A small pipeline trace recorded by the real OpenTelemetry SDK (service "foreign-svc"):
 * SERVER root -> PRODUCER -> CONSUMER -> CLIENT chat gpt-4.1 (1,000 in / 500 out) -> HTTP POST.
 */
export function recordSdkTrace(opts: { service?: string; model?: string; startMs?: number } = {}): ReadableSpan[] {
  const exporter = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ "service.name": opts.service ?? "foreign-svc" }),
    spanProcessors: [new SimpleSpanProcessor(exporter)],
  });
  const tracer = provider.getTracer("test");
  const t0 = opts.startMs ?? Date.now() - 10_000;
  const root = tracer.startSpan("POST /v1/research", { kind: SpanKind.SERVER, startTime: hr(t0) }, ROOT_CONTEXT);
  const inRoot = trace.setSpan(ROOT_CONTEXT, root);
  const publish = tracer.startSpan(
    "publish research-analysis",
    {
      kind: SpanKind.PRODUCER,
      startTime: hr(t0 + 1),
      attributes: {
        [ATTR_MESSAGING_SYSTEM]: "bullmq",
        [ATTR_MESSAGING_DESTINATION_NAME]: "research-analysis",
        [ATTR_MESSAGING_MESSAGE_ID]: "r1-analysis",
      },
    },
    inRoot,
  );
  publish.end(hr(t0 + 2));
  const consumer = tracer.startSpan(
    "process research-analysis",
    {
      kind: SpanKind.CONSUMER,
      startTime: hr(t0 + 12),
      attributes: {
        [ATTR_MESSAGING_SYSTEM]: "bullmq",
        [ATTR_MESSAGING_DESTINATION_NAME]: "research-analysis",
        [ATTR_MESSAGING_MESSAGE_ID]: "r1-analysis",
        [ATTR_JOB_ATTEMPT]: 1,
        [ATTR_QUEUE_WAIT_MS]: 10,
      },
    },
    trace.setSpan(ROOT_CONTEXT, publish),
  );
  const model = opts.model ?? "gpt-4.1";
  const chat = tracer.startSpan(
    `chat ${model}`,
    {
      kind: SpanKind.CLIENT,
      startTime: hr(t0 + 13),
      attributes: {
        [ATTR_GEN_AI_OPERATION_NAME]: "chat",
        [ATTR_GEN_AI_PROVIDER_NAME]: "openai",
        [ATTR_GEN_AI_REQUEST_MODEL]: model,
        [ATTR_STAGE]: "analysis",
        [ATTR_RESEARCH_ID]: "r1",
      },
    },
    trace.setSpan(ROOT_CONTEXT, consumer),
  );
  const post = tracer.startSpan(
    "POST",
    { kind: SpanKind.CLIENT, startTime: hr(t0 + 14), attributes: { [ATTR_HTTP_REQUEST_METHOD]: "POST" } },
    trace.setSpan(ROOT_CONTEXT, chat),
  );
  post.setAttributes({ [ATTR_HTTP_RESPONSE_STATUS_CODE]: 200, [ATTR_HTTP_REQUEST_RESEND_COUNT]: 0 });
  post.end(hr(t0 + 810));
  chat.setAttributes({
    [ATTR_GEN_AI_RESPONSE_MODEL]: `${model}-2025-04-14`,
    [ATTR_GEN_AI_USAGE_INPUT_TOKENS]: 1_000,
    [ATTR_GEN_AI_USAGE_OUTPUT_TOKENS]: 500,
    [ATTR_USAGE_COST_USD]: 0.006,
  });
  chat.setStatus({ code: SpanStatusCode.OK });
  chat.end(hr(t0 + 813.5));
  consumer.setStatus({ code: SpanStatusCode.OK });
  consumer.end(hr(t0 + 815));
  root.end(hr(t0 + 5));
  return exporter.getFinishedSpans();
}
