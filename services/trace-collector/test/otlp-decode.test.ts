import { JsonTraceSerializer, ProtobufTraceSerializer } from "@opentelemetry/otlp-transformer";
import { describe, expect, it } from "vitest";
import { decodeOtlpJson, decodeOtlpProtobuf, OtlpDecodeError } from "../src/collector.js";
import { pipelineTrace, toOtlpJson } from "../src/testing/synthetic.js";
import { recordSdkTrace } from "./support.js";
import { ATTR_STAGE } from "@tracelane/pipeline";
import { ATTR_GEN_AI_USAGE_COST, ATTR_GEN_AI_USAGE_INPUT_TOKENS } from "@tracelane/tracing/attributes";

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
    expect(chat.attributes[ATTR_GEN_AI_USAGE_COST]).toBe(0.006);
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
    const { spans } = decodeOtlpJson(toOtlpJson([root!]));
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
