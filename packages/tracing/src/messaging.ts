import { context, SpanKind, SpanStatusCode, trace, type Span } from "@opentelemetry/api";
import { extractContext, injectContext, type Carrier } from "./carrier.js";
import { recordError, wasCancelled } from "./errors.js";
import {
  ATTR_JOB_ATTEMPT,
  ATTR_MESSAGING_DESTINATION_NAME,
  ATTR_MESSAGING_MESSAGE_ID,
  ATTR_MESSAGING_OPERATION_NAME,
  ATTR_MESSAGING_OPERATION_TYPE,
  ATTR_QUEUE_WAIT_MS,
  ATTR_MESSAGING_SYSTEM,
} from "./attributes.js";

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
      [ATTR_MESSAGING_SYSTEM]: opts.system ?? "bullmq",
      [ATTR_MESSAGING_OPERATION_TYPE]: "send",
      [ATTR_MESSAGING_OPERATION_NAME]: "publish",
      [ATTR_MESSAGING_DESTINATION_NAME]: opts.queue,
      ...(opts.messageId ? { [ATTR_MESSAGING_MESSAGE_ID]: opts.messageId } : {}),
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
  /**
   * Errors that are how the queue moves a message on rather than failures (a job parked until its children
   * are done, say): the span ends OK with an event naming it instead of recording an error.
   */
  handOff?: (err: unknown) => string | undefined;
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
        [ATTR_MESSAGING_SYSTEM]: opts.system ?? "bullmq",
        [ATTR_MESSAGING_OPERATION_TYPE]: "process",
        [ATTR_MESSAGING_OPERATION_NAME]: "process",
        [ATTR_MESSAGING_DESTINATION_NAME]: opts.queue,
        ...(opts.messageId ? { [ATTR_MESSAGING_MESSAGE_ID]: opts.messageId } : {}),
        [ATTR_JOB_ATTEMPT]: opts.attempt,
        ...(opts.publishedAt !== undefined ? { [ATTR_QUEUE_WAIT_MS]: Math.max(0, now - opts.publishedAt) } : {}),
      },
    },
    parent,
  );
  try {
    const result = await context.with(trace.setSpan(parent, span), () => fn(span));
    if (!wasCancelled(span)) span.setStatus({ code: SpanStatusCode.OK });
    return result;
  } catch (err) {
    const handOff = opts.handOff?.(err);
    if (handOff) {
      span.addEvent(handOff);
      span.setStatus({ code: SpanStatusCode.OK });
    } else recordError(span, err);
    throw err;
  } finally {
    span.end();
  }
}
