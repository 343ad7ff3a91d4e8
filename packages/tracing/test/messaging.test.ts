import { SpanKind, SpanStatusCode } from "@opentelemetry/api";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { withProcessSpan, withPublishSpan, type Carrier } from "../src/index.js";
import { useInMemoryTracing, type InMemoryTracing } from "../src/testing.js";
import {
  ATTR_ERROR_TYPE,
  ATTR_JOB_ATTEMPT,
  ATTR_MESSAGING_DESTINATION_NAME,
  ATTR_MESSAGING_MESSAGE_ID,
  ATTR_QUEUE_WAIT_MS,
} from "@tracelane/tracing/attributes";

describe("withPublishSpan -> carrier -> withProcessSpan", () => {
  let tracing: InMemoryTracing;
  beforeAll(() => {
    tracing = useInMemoryTracing();
  });
  beforeEach(() => tracing.reset());
  afterAll(() => tracing.shutdown());

  it("makes the CONSUMER span a child of the PRODUCER span in the same trace", async () => {
    // JSON round trip: the carrier travels inside BullMQ job data.
    const carrier = await withPublishSpan({ queue: "analysis", messageId: "job-1" }, async (c) => JSON.parse(JSON.stringify(c)) as Carrier);
    await withProcessSpan({ queue: "analysis", messageId: "job-1", attempt: 1, carrier, publishedAt: Date.now() - 5 }, async () => "done");

    const producer = tracing.spanNamed("publish analysis");
    const consumer = tracing.spanNamed("process analysis");
    expect(producer.kind).toBe(SpanKind.PRODUCER);
    expect(consumer.kind).toBe(SpanKind.CONSUMER);
    expect(consumer.spanContext().traceId).toBe(producer.spanContext().traceId);
    expect(consumer.parentSpanContext?.spanId).toBe(producer.spanContext().spanId);
    expect(consumer.parentSpanContext?.isRemote).toBe(true);
    expect(consumer.attributes).toMatchObject({
      [ATTR_MESSAGING_DESTINATION_NAME]: "analysis",
      [ATTR_MESSAGING_MESSAGE_ID]: "job-1",
      [ATTR_JOB_ATTEMPT]: 1,
    });
    expect(consumer.attributes[ATTR_QUEUE_WAIT_MS]).toBeGreaterThanOrEqual(5);
  });

  it("gives each processing attempt of one message its own CONSUMER span under the same producer", async () => {
    const carrier = await withPublishSpan({ queue: "factcheck" }, async (c) => c);
    await expect(
      withProcessSpan({ queue: "factcheck", messageId: "job-2", attempt: 1, carrier }, async () => {
        throw new Error("model timed out");
      }),
    ).rejects.toThrow("model timed out");
    await withProcessSpan({ queue: "factcheck", messageId: "job-2", attempt: 2, carrier }, async () => undefined);

    const producer = tracing.spanNamed("publish factcheck");
    const attempts = tracing.spans().filter((s) => s.name === "process factcheck");
    expect(attempts.map((s) => s.attributes[ATTR_JOB_ATTEMPT])).toEqual([1, 2]);
    for (const attempt of attempts) {
      expect(attempt.spanContext().traceId).toBe(producer.spanContext().traceId);
      expect(attempt.parentSpanContext?.spanId).toBe(producer.spanContext().spanId);
    }
    expect(attempts[0]?.status.code).toBe(SpanStatusCode.ERROR);
    expect(attempts[0]?.attributes[ATTR_ERROR_TYPE]).toBe("Error");
    expect(attempts[1]?.status.code).toBe(SpanStatusCode.OK);
    expect(new Set(attempts.map((s) => s.spanContext().spanId)).size).toBe(2);
  });

  it("parents a publish made while processing under the CONSUMER span (next pipeline stage)", async () => {
    const carrier = await withPublishSpan({ queue: "analysis" }, async (c) => c);
    await withProcessSpan({ queue: "analysis", messageId: "a", attempt: 1, carrier }, () =>
      withPublishSpan({ queue: "synthesis" }, async () => undefined),
    );
    const consumer = tracing.spanNamed("process analysis");
    const next = tracing.spanNamed("publish synthesis");
    expect(next.parentSpanContext?.spanId).toBe(consumer.spanContext().spanId);
    expect(next.spanContext().traceId).toBe(consumer.spanContext().traceId);
  });
});
