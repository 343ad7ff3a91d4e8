import { context, ROOT_CONTEXT, trace } from "@opentelemetry/api";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { extractContext, injectContext, type Carrier } from "../src/index.js";
import { useInMemoryTracing, type InMemoryTracing } from "../src/testing.js";
import { parseTraceparent, parseTracestate } from "../src/w3c-propagator.js";

const TRACE = "12345678901234567890123456789012";
const PARENT = `00-${TRACE}-1234567890123456-01`;

/** What a service sends on after receiving `incoming`: extract, work in a child span, inject. */
function hop(incoming: Carrier): Carrier {
  const parent = extractContext(incoming);
  const span = trace.getTracer("w3c-test").startSpan("work", {}, parent);
  const out = injectContext({}, trace.setSpan(parent, span));
  span.end();
  return out;
}

describe("W3C trace context, strict level 2", () => {
  let tracing: InMemoryTracing;
  beforeAll(() => {
    tracing = useInMemoryTracing();
  });
  afterAll(() => tracing.shutdown());

  it("drops an invalid tracestate whole instead of keeping its valid members (OpenTelemetry JS keeps them)", () => {
    for (const bad of ["foo=1,FOO=2", "foo=bar=baz", "foo=,bar=3", "@foo=1,bar=2", "foo =1", "foo.bar=1", `foo=1,${"z".repeat(257)}=1`]) {
      expect(hop({ traceparent: PARENT, tracestate: bad }).tracestate, bad).toBeUndefined();
    }
    const members = Array.from({ length: 33 }, (_, i) => `bar${String(i + 1).padStart(2, "0")}=${i}`);
    expect(hop({ traceparent: PARENT, tracestate: members.join(",") }).tracestate).toBeUndefined();
    expect(parseTracestate(members.slice(0, 32).join(","))!.serialize().split(",")).toHaveLength(32);
  });

  it("passes a valid tracestate on unchanged, in order, with OWS and empty members removed", () => {
    expect(hop({ traceparent: PARENT, tracestate: "foo=1 \t , \t bar=2,, \t baz=3" }).tracestate).toBe("foo=1,bar=2,baz=3");
    expect(hop({ traceparent: PARENT, tracestate: "foo@=1,foo@@bar=2,t@vvvvvvvvvvvvvvv=3,0x=4" }).tracestate).toBe(
      "foo@=1,foo@@bar=2,t@vvvvvvvvvvvvvvv=3,0x=4",
    );
    expect(hop({ traceparent: PARENT, tracestate: "a= leading space kept" }).tracestate).toBe("a= leading space kept");
  });

  it("keeps the Level 2 random flag across hops and sets it on traces it starts", () => {
    const random = hop({ traceparent: `00-${TRACE}-1234567890123456-02` });
    expect(random.traceparent).toMatch(new RegExp(`^00-${TRACE}-[0-9a-f]{16}-0[23]$`));
    expect(parseInt(random.traceparent!.slice(-2), 16) & 0x02).toBe(2);
    // A parent without the flag: the trace id may not be random, so the flag must not appear.
    const plain = hop({ traceparent: `00-${"a".repeat(32)}-1234567890123456-01` });
    expect(parseInt(plain.traceparent!.slice(-2), 16) & 0x02).toBe(0);
    // A trace this process starts has OpenTelemetry's random ids.
    const root = trace.getTracer("w3c-test").startSpan("root", {}, ROOT_CONTEXT);
    const own = injectContext({}, trace.setSpan(context.active(), root));
    root.end();
    expect(parseInt(own.traceparent!.slice(-2), 16) & 0x03).toBe(3);
  });

  it("ignores traceparents the processing model rejects, and reads future versions' first four fields", () => {
    for (const bad of [
      `ff-${TRACE}-1234567890123456-01`,
      `00-${"0".repeat(32)}-1234567890123456-01`,
      `00-${TRACE}-0000000000000000-01`,
      `00-${"ABCDEF".repeat(5)}AB-1234567890123456-01`,
      `00-${TRACE}-1234567890123456-01-extra`,
      `00-${TRACE}-1234567890123456-1`,
      `${PARENT},${PARENT}`,
    ]) {
      expect(parseTraceparent(bad), bad).toBeUndefined();
    }
    expect(parseTraceparent(`cc-${TRACE}-1234567890123456-01-what-the-future-brings`)).toEqual({
      traceId: TRACE,
      spanId: "1234567890123456",
      traceFlags: 1,
    });
    expect(parseTraceparent(` \t${PARENT}\t `)?.traceId).toBe(TRACE);
  });
});
