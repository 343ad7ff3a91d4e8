import { trace } from "@opentelemetry/api";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { extractContext, injectContext } from "../src/index.js";
import { useInMemoryTracing, type InMemoryTracing } from "../src/testing.js";

const TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT_ID = "00f067aa0ba902b7";
const incoming = {
  traceparent: `00-${TRACE_ID}-${PARENT_ID}-01`,
  tracestate: "vendor1=opaque1,tracelane=t61rcWkgMzE",
};

describe("injectContext / extractContext", () => {
  let tracing: InMemoryTracing;
  beforeAll(() => {
    tracing = useInMemoryTracing();
  });
  afterAll(() => tracing.shutdown());

  it("round-trips trace id, parent span id and tracestate unchanged", () => {
    const ctx = extractContext(incoming);
    const remote = trace.getSpanContext(ctx);
    expect(remote).toMatchObject({ traceId: TRACE_ID, spanId: PARENT_ID, isRemote: true });
    expect(injectContext({}, ctx)).toEqual(incoming);
  });

  it("makes a child span of the remote parent carry its trace id and tracestate", () => {
    const span = trace.getTracer("test").startSpan("child", {}, extractContext(incoming));
    const carrier = injectContext({}, trace.setSpan(extractContext(incoming), span));
    span.end();
    expect(carrier.traceparent).toBe(`00-${TRACE_ID}-${span.spanContext().spanId}-01`);
    expect(carrier.tracestate).toBe(incoming.tracestate);
    expect(tracing.spanNamed("child").parentSpanContext).toMatchObject({ traceId: TRACE_ID, spanId: PARENT_ID });
  });

  it.each([
    ["a too short trace id", "00-4bf92f3577b34da6-00f067aa0ba902b7-01"],
    ["an all-zero trace id", "00-00000000000000000000000000000000-00f067aa0ba902b7-01"],
    ["an all-zero parent id", `00-${TRACE_ID}-0000000000000000-01`],
    ["version ff", `ff-${TRACE_ID}-${PARENT_ID}-01`],
    ["garbage", "not-a-traceparent"],
  ])("ignores a malformed traceparent (%s): no remote parent, a span starts a fresh trace", (_what, traceparent) => {
    const ctx = extractContext({ traceparent, tracestate: incoming.tracestate });
    expect(trace.getSpanContext(ctx)).toBeUndefined();
    expect(injectContext({}, ctx)).toEqual({});

    const span = trace.getTracer("test").startSpan("fresh", {}, ctx);
    span.end();
    expect(span.spanContext().traceId).not.toBe(TRACE_ID);
    expect(tracing.spans().at(-1)?.parentSpanContext).toBeUndefined();
  });

  it("returns the base context for a missing carrier", () => {
    expect(trace.getSpanContext(extractContext(undefined))).toBeUndefined();
  });
});
