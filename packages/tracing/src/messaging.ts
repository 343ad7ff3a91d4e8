import { context, SpanKind, SpanStatusCode, trace, type Span } from "@opentelemetry/api";
import { extractContext, injectContext, type Carrier } from "./carrier.js";
import { recordError } from "./errors.js";

const tracer = () => trace.getTracer("@tracelane/tracing/messaging");

export interface PublishOptions {
  /** The queue the message goes to. */
  queue: string;
  /** Message (job) id when the producer chooses it. */
  messageId?: string;
  system?: string;
}

/**
 * Run `fn` inside a PRODUCER span `publish <queue>`; `fn` receives a carrier
 * holding that span's context, to be stored in the message.
 */
export async function withPublishSpan<T>(opts: PublishOptions, fn: (carrier: Carrier, span: Span) => Promise<T>): Promise<T> {
  const span = tracer().startSpan(`publish ${opts.queue}`, {
    kind: SpanKind.PRODUCER,
    attributes: {
      "messaging.system": opts.system ?? "bullmq",
      "messaging.operation.type": "send",
      "messaging.operation.name": "publish",
      "messaging.destination.name": opts.queue,
      ...(opts.messageId ? { "messaging.message.id": opts.messageId } : {}),
    },
  });
  const ctx = trace.setSpan(context.active(), span);
  try {
    return await context.with(ctx, () => fn(injectContext({}, ctx), span));
  } catch (err) {
    recordError(span, err);
    throw err;
  } finally {
    span.end();
  }
}

export interface ProcessOptions {
  queue: string;
  messageId: string | undefined;
  /** 1-based attempt number of this delivery. */
  attempt: number;
  /** When the message was published (epoch ms), for the queue-wait attribute. */
  publishedAt?: number;
  carrier: Carrier | undefined;
  system?: string;
}

/**
 * Run `fn` inside a CONSUMER span `process <queue>` whose parent is the
 * producer's context from the carrier; every attempt gets its own span.
 */
export async function withProcessSpan<T>(opts: ProcessOptions, fn: (span: Span) => Promise<T>): Promise<T> {
  const parent = extractContext(opts.carrier);
  const now = Date.now();
  const span = tracer().startSpan(
    `process ${opts.queue}`,
    {
      kind: SpanKind.CONSUMER,
      attributes: {
        "messaging.system": opts.system ?? "bullmq",
        "messaging.operation.type": "process",
        "messaging.operation.name": "process",
        "messaging.destination.name": opts.queue,
        ...(opts.messageId ? { "messaging.message.id": opts.messageId } : {}),
        "messaging.bullmq.job.attempt": opts.attempt,
        ...(opts.publishedAt !== undefined ? { "messaging.queue.wait_ms": Math.max(0, now - opts.publishedAt) } : {}),
      },
    },
    parent,
  );
  try {
    const result = await context.with(trace.setSpan(parent, span), () => fn(span));
    span.setStatus({ code: SpanStatusCode.OK });
    return result;
  } catch (err) {
    recordError(span, err);
    throw err;
  } finally {
    span.end();
  }
}
