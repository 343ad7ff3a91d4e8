import { SpanKind, SpanStatusCode } from "@opentelemetry/api";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { withProcessSpan, withPublishSpan, type Carrier } from "../src/index.js";
import { useInMemoryTracing, type InMemoryTracing } from "../src/testing.js";

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
      "messaging.destination.name": "analysis",
      "messaging.message.id": "job-1",
      "messaging.bullmq.job.attempt": 1,
    });
    expect(consumer.attributes["messaging.queue.wait_ms"]).toBeGreaterThanOrEqual(5);
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
    expect(attempts.map((s) => s.attributes["messaging.bullmq.job.attempt"])).toEqual([1, 2]);
    for (const attempt of attempts) {
      expect(attempt.spanContext().traceId).toBe(producer.spanContext().traceId);
      expect(attempt.parentSpanContext?.spanId).toBe(producer.spanContext().spanId);
    }
    expect(attempts[0]?.status.code).toBe(SpanStatusCode.ERROR);
    expect(attempts[0]?.attributes["error.type"]).toBe("Error");
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
