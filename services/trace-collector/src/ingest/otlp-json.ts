import { OtlpDecodeError, requestToSpans, type DecodedSpans } from "./otlp-common.js";

/**
 * Decode OTLP/JSON (ExportTraceServiceRequest as written by the SDK's JsonTraceSerializer:
 * hex ids, unix-nano timestamps as strings, AnyValue attributes) into SpanRecords.
 */
export function decodeOtlpJson(body: string | Uint8Array, nowMs = Date.now()): DecodedSpans {
  const text = typeof body === "string" ? body : Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString("utf8");
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new OtlpDecodeError(`body is not valid JSON: ${(err as Error).message}`);
  }
  return requestToSpans(parsed, nowMs);
}
