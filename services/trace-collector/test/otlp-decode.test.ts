import { JsonTraceSerializer, ProtobufTraceSerializer } from "@opentelemetry/otlp-transformer";
import { describe, expect, it } from "vitest";
import { decodeOtlpJson, decodeOtlpProtobuf, OtlpDecodeError } from "../src/collector.js";
import { pipelineTrace, toOtlpJson } from "../src/testing/synthetic.js";
import { recordSdkTrace } from "./support.js";
import { ATTR_STAGE } from "@tracelane/pipeline";
import { ATTR_USAGE_COST_USD, ATTR_GEN_AI_USAGE_INPUT_TOKENS } from "@tracelane/tracing/attributes";

const text = (bytes: Uint8Array | undefined) => Buffer.from(bytes!).toString("utf8");

describe("OTLP decoding", () => {
  it("decodes the SDK's JSON serialization: hex ids, nano times, kinds, statuses, typed attributes", () => {
    const sdk = recordSdkTrace();
    const { spans, rejected } = decodeOtlpJson(text(JsonTraceSerializer.serializeRequest(sdk)));
    expect(rejected).toEqual([]);
    expect(spans).toHaveLength(5);
    const chatSdk = sdk.find((s) => s.name === "chat gpt-4.1")!;
    const chat = spans.find((s) => s.name === "chat gpt-4.1")!;
    expect(chat).toMatchObject({
      traceId: chatSdk.spanContext().traceId,
      spanId: chatSdk.spanContext().spanId,
      parentSpanId: chatSdk.parentSpanContext!.spanId,
      kind: "client",
      service: "foreign-svc",
      status: "ok",
    });
    expect(chat.durationMs).toBeCloseTo(800.5, 3);
    expect(chat.attributes[ATTR_GEN_AI_USAGE_INPUT_TOKENS]).toBe(1_000);
    expect(chat.attributes[ATTR_USAGE_COST_USD]).toBe(0.006);
    expect(chat.attributes[ATTR_STAGE]).toBe("analysis");
    expect(spans.find((s) => s.name === "POST /v1/research")).toMatchObject({ kind: "server", status: "unset" });
    expect(spans.find((s) => s.name === "POST /v1/research")!.parentSpanId).toBeUndefined();
  });

  it("decodes the SDK's protobuf serialization to the same spans as its JSON", () => {
    const sdk = recordSdkTrace();
    const fromJson = decodeOtlpJson(text(JsonTraceSerializer.serializeRequest(sdk)));
    const fromProto = decodeOtlpProtobuf(ProtobufTraceSerializer.serializeRequest(sdk)!);
    expect(fromProto).toEqual(fromJson);
  });

  it("decodes the synthetic generator's JSON exactly like SDK output", () => {
    const [root] = pipelineTrace({ startMs: 1_700_000_000_123.25 });
    const { spans } = decodeOtlpJson(toOtlpJson([root!]), 1_700_000_100_000);
    expect(spans[0]).toMatchObject({ spanId: root!.spanId, startMs: 1_700_000_000_123.25, kind: "server", service: "api" });
  });

  it("rejects a body that is not JSON with a message saying so", () => {
    expect(() => decodeOtlpJson("{nope")).toThrow(OtlpDecodeError);
    expect(() => decodeOtlpJson("{nope")).toThrow(/not valid JSON/);
    expect(() => decodeOtlpJson('{"resourceSpans": 3}')).toThrow(/resourceSpans must be an array/);
  });

  it("skips a span with a malformed id and reports where it was", () => {
    const body = JSON.stringify({
      resourceSpans: [{ scopeSpans: [{ spans: [{ traceId: "xyz", spanId: "0102030405060708", startTimeUnixNano: "1", name: "bad" }] }] }],
    });
    const { spans, rejected } = decodeOtlpJson(body);
    expect(spans).toEqual([]);
    expect(rejected).toEqual([{ path: "resourceSpans[0].scopeSpans[0].spans[0]", reason: expect.stringMatching(/traceId/) }]);
  });
});

describe("OTLP ingest bounds (spans come from anyone who can reach the collector)", () => {
  const NOW = Date.parse("2026-12-02T12:00:00Z");
  const nanos = (ms: number) => `${BigInt(Math.round(ms)) * 1_000_000n}`;
  const intAttr = (key: string, v: unknown) => ({ key, value: typeof v === "string" ? { intValue: v } : { doubleValue: v } });
  const request = (...spans: object[]) => JSON.stringify({ resourceSpans: [{ resource: { attributes: [] }, scopeSpans: [{ spans }] }] });
  let n = 0;
  const span = (over: Record<string, unknown> = {}) => ({
    traceId: "4bf92f3577b34da6a3ce929d0e0e4736",
    spanId: (++n).toString(16).padStart(16, "0"),
    name: "chat gpt-4.1",
    kind: 3,
    startTimeUnixNano: nanos(NOW - 1000),
    endTimeUnixNano: nanos(NOW - 500),
    attributes: [],
    ...over,
  });

  it.each([
    [
      "1e308 input tokens",
      intAttr(ATTR_GEN_AI_USAGE_INPUT_TOKENS, 1e308),
      /gen_ai\.usage\.input_tokens must be a whole number of tokens from 0 to 100,000,000 \(got 1e\+308\)/,
    ],
    ["a fraction of a token", intAttr(ATTR_GEN_AI_USAGE_INPUT_TOKENS, 12.5), /got 12\.5/],
    ["negative tokens", intAttr(ATTR_GEN_AI_USAGE_INPUT_TOKENS, "-3"), /got -3/],
    ["tokens as text", { key: ATTR_GEN_AI_USAGE_INPUT_TOKENS, value: { stringValue: "many" } }, /got "many"/],
    [
      "an infinite cost",
      { key: ATTR_USAGE_COST_USD, value: { doubleValue: "Infinity" } },
      /tracelane\.usage\.cost_usd must be a cost in USD/,
    ],
    // An older sender's name for the cost is read as the current one, bounds included.
    [
      "an infinite cost under its old name",
      { key: "gen_ai.usage.cost", value: { doubleValue: "Infinity" } },
      /tracelane\.usage\.cost_usd must be a cost/,
    ],
  ])("rejects a span claiming %s, naming the attribute and the value", (_what, attribute, reason) => {
    const { spans, rejected } = decodeOtlpJson(request(span({ attributes: [attribute] })), NOW);
    expect(spans).toEqual([]);
    expect(rejected).toEqual([{ path: "resourceSpans[0].scopeSpans[0].spans[0]", reason: expect.stringMatching(reason) }]);
  });

  it("keeps a real model call's usage", () => {
    const { spans, rejected } = decodeOtlpJson(request(span({ attributes: [intAttr(ATTR_GEN_AI_USAGE_INPUT_TOKENS, "1200")] })), NOW);
    expect(rejected).toEqual([]);
    expect(spans[0]!.attributes[ATTR_GEN_AI_USAGE_INPUT_TOKENS]).toBe(1200);
  });

  it.each([
    ["in the far future (1e24 ns since 1970 is year 33,658)", "1000000000000000000000000"],
    ["an hour ahead of the collector's clock", nanos(NOW + 3_600_000)],
    ["eight days ago", nanos(NOW - 8 * 24 * 3_600_000)],
    ["at the epoch", "1000"],
  ])("rejects a span starting %s, so it cannot sit first (or last) in every listing", (_what, start) => {
    const { spans, rejected } = decodeOtlpJson(request(span({ startTimeUnixNano: start, endTimeUnixNano: start })), NOW);
    expect(spans).toEqual([]);
    expect(rejected[0]!.reason).toMatch(
      /^startTimeUnixNano .* is outside what the collector accepts \(2026-11-25T12:00:00\.000Z to 2026-12-02T12:10:00\.000Z\): check the sender's clock$/,
    );
  });

  it("clamps an end time past the window to the window, keeping the span", () => {
    const { spans } = decodeOtlpJson(request(span({ endTimeUnixNano: "1000000000000000000000000" })), NOW);
    expect(spans[0]!.endMs).toBe(NOW + 10 * 60 * 1000);
    expect(spans[0]!.durationMs).toBe(10 * 60 * 1000 + 1000);
  });

  it("keeps at most 128 attributes per span and drops keys longer than 256 characters", () => {
    const attributes = [
      { key: "k".repeat(300), value: { stringValue: "long key" } },
      ...Array.from({ length: 200 }, (_, i) => ({ key: `a${i}`, value: { intValue: String(i) } })),
    ];
    const { spans } = decodeOtlpJson(request(span({ attributes })), NOW);
    const keys = Object.keys(spans[0]!.attributes);
    expect(keys).toHaveLength(128);
    expect(keys[0]).toBe("a0");
    expect(keys.at(-1)).toBe("a127");
  });

  it("refuses a request of more than 10,000 spans as a whole, saying how to fix it", () => {
    const many = Array.from({ length: 10_001 }, () => span());
    expect(() => decodeOtlpJson(request(...many), NOW)).toThrow(
      new OtlpDecodeError("at most 10,000 spans per request (got 10,001); send smaller batches"),
    );
    expect(decodeOtlpJson(request(...many.slice(0, 10_000)), NOW).spans).toHaveLength(10_000);
  });
});
