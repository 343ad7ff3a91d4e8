import { SpanKind, SpanStatusCode, trace } from "@opentelemetry/api";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { recordChatResponse, startTracing, withChatSpan, type TracingHandle } from "../src/index.js";
import { startOtlpGrpcReceiver, type OtlpGrpcReceiver } from "./helpers/otlp-grpc-receiver.js";
import {
  ATTR_GEN_AI_OPERATION_NAME,
  ATTR_GEN_AI_PROVIDER_NAME,
  ATTR_GEN_AI_REQUEST_MODEL,
  ATTR_GEN_AI_RESPONSE_FINISH_REASONS,
  ATTR_GEN_AI_RESPONSE_MODEL,
  ATTR_GEN_AI_USAGE_INPUT_TOKENS,
  ATTR_GEN_AI_USAGE_OUTPUT_TOKENS,
  ATTR_SERVER_PORT,
} from "@tracelane/tracing/attributes";

// startTracing registers OpenTelemetry globals, so this file starts it once (vitest runs each file in its own fork).
describe("OTLP/gRPC export (Jaeger path)", () => {
  let receiver: OtlpGrpcReceiver;
  let tracing: TracingHandle;

  beforeAll(async () => {
    receiver = await startOtlpGrpcReceiver();
    tracing = startTracing({
      serviceName: "otlp-test",
      serviceVersion: "1.2.3",
      env: { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, TRACELANE_ENV: "test" },
    });
  });

  afterAll(async () => {
    await tracing?.shutdown();
    await receiver?.close();
  });

  it("sends a parent/child span tree over the wire with ids, parents, names and attributes intact", async () => {
    const tracer = trace.getTracer("otlp-test");
    const ids = await tracer.startActiveSpan("stage analysis", async (stage) => {
      const chatSpanId = await withChatSpan({ model: "gpt-test", provider: "openai", serverPort: 8080 }, async (span) => {
        recordChatResponse(span, { responseModel: "gpt-test-2025", inputTokens: 123, outputTokens: 45, finishReasons: ["stop"] });
        return span.spanContext().spanId;
      });
      stage.end();
      return { traceId: stage.spanContext().traceId, stageSpanId: stage.spanContext().spanId, chatSpanId };
    });

    await tracing.forceFlush();

    const spans = receiver.spans();
    expect(spans).toHaveLength(2);
    const stage = spans.find((s) => s.name === "stage analysis");
    const chat = spans.find((s) => s.name === "chat gpt-test");
    expect(stage).toMatchObject({ traceId: ids.traceId, spanId: ids.stageSpanId, parentSpanId: "", kind: SpanKind.INTERNAL + 1 });
    expect(chat).toMatchObject({
      traceId: ids.traceId,
      spanId: ids.chatSpanId,
      parentSpanId: ids.stageSpanId,
      kind: SpanKind.CLIENT + 1, // OTLP enums are the API's shifted by one (0 = UNSPECIFIED)
      statusCode: SpanStatusCode.OK,
      scope: "@tracelane/tracing/genai",
    });
    expect(chat?.attributes).toMatchObject({
      [ATTR_GEN_AI_OPERATION_NAME]: "chat",
      [ATTR_GEN_AI_PROVIDER_NAME]: "openai",
      [ATTR_GEN_AI_REQUEST_MODEL]: "gpt-test",
      [ATTR_GEN_AI_RESPONSE_MODEL]: "gpt-test-2025",
      [ATTR_GEN_AI_USAGE_INPUT_TOKENS]: 123,
      [ATTR_GEN_AI_USAGE_OUTPUT_TOKENS]: 45,
      [ATTR_GEN_AI_RESPONSE_FINISH_REASONS]: ["stop"],
      [ATTR_SERVER_PORT]: 8080,
    });

    const resource = receiver.exports[0]?.[0]?.resource;
    expect(resource).toMatchObject({
      "service.name": "otlp-test",
      "service.version": "1.2.3",
      "deployment.environment.name": "test",
    });
    expect(tracing.stats()).toMatchObject({ exportedSpans: 2, droppedSpans: 0, failedExports: 0 });
    expect(tracing.stats().destinations).toEqual({ otlp: { exportedSpans: 2, droppedSpans: 0, failedExports: 0 } });
  });
});
