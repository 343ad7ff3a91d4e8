import { randomUUID } from "node:crypto";
import { ROOT_CONTEXT, SpanKind, SpanStatusCode, trace } from "@opentelemetry/api";
import { resourceFromAttributes } from "@opentelemetry/resources";
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from "@opentelemetry/sdk-trace-base";
import { loadPriceTable } from "@tracelane/pricing";
import { Redis } from "ioredis";
import { createAssembler, DEFAULT_RULES, type AnomalyRules, type AssemblerOptions } from "../src/collector.js";

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

export function rules(overrides: Partial<AnomalyRules> = {}): AnomalyRules {
  return { ...DEFAULT_RULES, ...overrides };
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
    { kind: SpanKind.PRODUCER, startTime: hr(t0 + 1), attributes: { "messaging.system": "bullmq", "messaging.destination.name": "research-analysis", "messaging.message.id": "r1-analysis" } },
    inRoot,
  );
  publish.end(hr(t0 + 2));
  const consumer = tracer.startSpan(
    "process research-analysis",
    {
      kind: SpanKind.CONSUMER,
      startTime: hr(t0 + 12),
      attributes: {
        "messaging.system": "bullmq",
        "messaging.destination.name": "research-analysis",
        "messaging.message.id": "r1-analysis",
        "messaging.bullmq.job.attempt": 1,
        "messaging.queue.wait_ms": 10,
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
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": model,
        "tracelane.stage": "analysis",
        "tracelane.research.id": "r1",
      },
    },
    trace.setSpan(ROOT_CONTEXT, consumer),
  );
  const post = tracer.startSpan("POST", { kind: SpanKind.CLIENT, startTime: hr(t0 + 14), attributes: { "http.request.method": "POST" } }, trace.setSpan(ROOT_CONTEXT, chat));
  post.setAttributes({ "http.response.status_code": 200, "http.request.resend_count": 0 });
  post.end(hr(t0 + 810));
  chat.setAttributes({
    "gen_ai.response.model": `${model}-2025-04-14`,
    "gen_ai.usage.input_tokens": 1_000,
    "gen_ai.usage.output_tokens": 500,
    "gen_ai.usage.cost": 0.006,
  });
  chat.setStatus({ code: SpanStatusCode.OK });
  chat.end(hr(t0 + 813.5));
  consumer.setStatus({ code: SpanStatusCode.OK });
  consumer.end(hr(t0 + 815));
  root.end(hr(t0 + 5));
  return exporter.getFinishedSpans();
}
