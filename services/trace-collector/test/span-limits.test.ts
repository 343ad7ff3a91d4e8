import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { decodeOtlpJson } from "../src/collector.js";
import { SPAN_LIMITS } from "../src/ingest/otlp-common.js";
import { randomSpanId, randomTraceId, toOtlpRequest, type SyntheticSpan } from "../src/testing/index.js";
import { startHttpCollector } from "./http-collector.js";
import { uniquePrefix } from "./support.js";

const base = (): SyntheticSpan => ({
  traceId: randomTraceId(),
  spanId: randomSpanId(),
  name: "limited",
  kind: "internal",
  service: "svc",
  startMs: Date.now() - 1_000,
  endMs: Date.now() - 900,
});

/** One span as an OTLP/JSON request, with extra raw OTLP fields (links, many events) set on it. */
function request(span: SyntheticSpan, raw: Record<string, unknown> = {}) {
  const req = toOtlpRequest([span]);
  Object.assign(req.resourceSpans[0]!.scopeSpans[0]!.spans[0]!, raw);
  return JSON.stringify(req);
}
const one = (body: string) => decodeOtlpJson(body).spans[0]!;
const link = () => ({ traceId: randomTraceId(), spanId: randomSpanId(), attributes: [{ key: "why", value: { stringValue: "caller" } }] });

describe("per-span limits", () => {
  it("truncates a long string value to 4 KiB, marking the span", () => {
    const span = one(request({ ...base(), attributes: { big: "x".repeat(100_000), small: "ok" } }));
    expect(span.attributes.big).toHaveLength(SPAN_LIMITS.stringChars + 1);
    expect(String(span.attributes.big).endsWith("…")).toBe(true);
    expect(span.attributes.small).toBe("ok");
    expect(span.clamped).toEqual({ truncatedValues: 1, droppedAttributes: 0, droppedEvents: 0, droppedLinks: 0 });
  });

  it("holds all string values of one span to 64 KiB, dropping attributes past the budget", () => {
    const attributes = Object.fromEntries(Array.from({ length: 100 }, (_, i) => [`a${i}`, "y".repeat(4_000)]));
    const span = one(request({ ...base(), attributes }));
    const chars = Object.values(span.attributes).reduce<number>((n, v) => n + String(v).length, 0);
    expect(chars).toBeLessThanOrEqual(SPAN_LIMITS.spanValueChars + 100);
    expect(span.clamped!.droppedAttributes).toBeGreaterThan(80);
  });

  it("keeps at most 128 attributes, 32 events and 32 links, counting the rest", () => {
    const attributes = Object.fromEntries(Array.from({ length: 200 }, (_, i) => [`k${i}`, i]));
    const events = Array.from({ length: 50 }, (_, i) => ({ name: `e${i}`, timeUnixNano: `${(Date.now() - 950) * 1e6}` }));
    const links = [...Array.from({ length: 40 }, link), { traceId: "nope", spanId: "x" }];
    const span = one(request({ ...base(), attributes }, { events, links }));
    expect(Object.keys(span.attributes)).toHaveLength(SPAN_LIMITS.attributes);
    expect(span.events).toHaveLength(SPAN_LIMITS.events);
    expect(span.links).toHaveLength(SPAN_LIMITS.links);
    expect(span.links![0]).toMatchObject({ attributes: { why: "caller" } });
    expect(span.clamped).toEqual({ truncatedValues: 0, droppedAttributes: 72, droppedEvents: 18, droppedLinks: 9 });
  });

  it("leaves a span within every limit unmarked", () => {
    const span = one(request({ ...base(), attributes: { a: "b" } }, { links: [link()] }));
    expect(span.clamped).toBeUndefined();
    expect(span.links).toHaveLength(1);
  });
});

describe("per-span limits over OTLP/HTTP", () => {
  let stack: Awaited<ReturnType<typeof startHttpCollector>>;
  beforeAll(async () => {
    stack = await startHttpCollector(inject("redisUrl"), uniquePrefix("limits"));
  });
  afterAll(async () => {
    await stack?.close();
  });

  it("stores a clamped span cut, and counts it in /stats and tracelane_collector_spans_total{outcome=clamped}", async () => {
    const span = base();
    const res = await stack.post(request({ ...span, attributes: { big: "z".repeat(50_000) } }), "application/json");
    expect(res.status).toBe(200);
    const stored = JSON.parse((await stack.redis.hget(stack.collector.assembler.keys.of(span.traceId).spans, span.spanId))!);
    expect(stored.attributes.big).toHaveLength(SPAN_LIMITS.stringChars + 1);
    expect(stored.clamped.truncatedValues).toBe(1);
    const stats = (await (await fetch(`${stack.base}/stats`)).json()) as { spansClamped: number };
    expect(stats.spansClamped).toBe(1);
    expect(await (await fetch(`${stack.base}/metrics`)).text()).toMatch(
      /tracelane_collector_spans_total\{tracelane_span_outcome="clamped"\} 1\b/,
    );
  });

  it("answers 413 in OTLP form for a body over the limit, gzip included (the limit counts inflated bytes)", async () => {
    const { gzipSync } = await import("node:zlib");
    const huge = gzipSync(Buffer.from(request({ ...base(), attributes: { pad: "p".repeat(17 * 1024 * 1024) } })));
    expect(huge.length).toBeLessThan(1024 * 1024);
    const res = await stack.post(huge, "application/json", { "content-encoding": "gzip" });
    expect(res.status).toBe(413);
    expect(((await res.json()) as { code: number }).code).toBe(3);
  });
});
