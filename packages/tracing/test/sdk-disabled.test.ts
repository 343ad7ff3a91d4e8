import { trace } from "@opentelemetry/api";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  currentTraceId,
  extractContext,
  injectContext,
  startTracing,
  tracingStats,
  withChatSpan,
  withProcessSpan,
  withPublishSpan,
  type TracingHandle,
} from "../src/index.js";

const incoming = {
  traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
  tracestate: "rojo=00f067aa0ba902b7",
};

describe("OTEL_SDK_DISABLED=true", () => {
  let tracing: TracingHandle;
  beforeAll(() => {
    // REDIS_URL and an endpoint are set on purpose: disabled means no exporter is created anyway.
    tracing = startTracing({
      serviceName: "disabled",
      env: { OTEL_SDK_DISABLED: "true", REDIS_URL: "redis://127.0.0.1:1", OTEL_EXPORTER_OTLP_ENDPOINT: "http://127.0.0.1:1" },
    });
  });
  afterAll(() => tracing.shutdown());

  it("returns a handle with enabled false that flushes and shuts down without work", async () => {
    expect(tracing.enabled).toBe(false);
    await tracing.forceFlush();
    expect(tracing.stats()).toEqual({ exportedSpans: 0, droppedSpans: 0, failedExports: 0, destinations: {} });
    expect(tracingStats().exportedSpans).toBe(0);
  });

  it("passes an incoming traceparent through extract and inject unchanged", () => {
    expect(injectContext({}, extractContext(incoming))).toEqual(incoming);
  });

  it("still runs the wrapped code and propagates the incoming context to the next publish", async () => {
    const result = await withProcessSpan({ queue: "analysis", messageId: "j", attempt: 1, carrier: incoming }, async (span) => {
      expect(span.isRecording()).toBe(false);
      expect(currentTraceId()).toBe("4bf92f3577b34da6a3ce929d0e0e4736");
      const chat = await withChatSpan({ model: "m", provider: "openai" }, async () => "answer");
      const forwarded = await withPublishSpan({ queue: "synthesis" }, async (carrier) => carrier);
      return { chat, forwarded };
    });
    expect(result.chat).toBe("answer");
    expect(result.forwarded).toEqual(incoming);
  });

  it("still rethrows errors from the wrapped code", async () => {
    await expect(
      withProcessSpan({ queue: "analysis", messageId: "j", attempt: 1, carrier: incoming }, async () => {
        throw new Error("boom");
      }),
    ).rejects.toThrow("boom");
  });

  it("registers no tracer provider: spans do not record", () => {
    const span = trace.getTracer("x").startSpan("nothing");
    expect(span.isRecording()).toBe(false);
    span.end();
  });
});
