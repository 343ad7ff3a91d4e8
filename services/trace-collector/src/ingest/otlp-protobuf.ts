import protobuf from "protobufjs";
import { OtlpDecodeError, requestToSpans, type DecodedSpans } from "./otlp-common.js";
import { OTLP_TRACE_PROTO_FILES } from "@tracelane/tracing";

interface OtlpTypes {
  request: protobuf.Type;
  response: protobuf.Type;
  status: protobuf.Type;
}

let types: OtlpTypes | undefined;

function otlpTypes(): OtlpTypes {
  if (!types) {
    const root = new protobuf.Root();
    for (const file of OTLP_TRACE_PROTO_FILES) protobuf.parse(file, root, { keepCase: false });
    root.resolveAll();
    types = {
      request: root.lookupType("opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest"),
      response: root.lookupType("opentelemetry.proto.collector.trace.v1.ExportTraceServiceResponse"),
      status: root.lookupType("google.rpc.Status"),
    };
  }
  return types;
}

/** Decode an OTLP/protobuf ExportTraceServiceRequest into SpanRecords. */
export function decodeOtlpProtobuf(body: Uint8Array, nowMs = Date.now()): DecodedSpans {
  const { request } = otlpTypes();
  let message: protobuf.Message;
  try {
    message = request.decode(body);
  } catch (err) {
    throw new OtlpDecodeError(`body is not a protobuf ExportTraceServiceRequest: ${(err as Error).message}`);
  }
  // int64/fixed64 as decimal strings (exact), bytes stay bytes, enums as numbers.
  const plain = request.toObject(message, { longs: String, enums: Number });
  return requestToSpans(plain, nowMs);
}

/** ExportTraceServiceResponse, with partial_success when some spans were rejected. */
export function encodeExportResponse(partial?: { rejectedSpans: number; errorMessage: string }): Uint8Array {
  const { response } = otlpTypes();
  const payload = partial ? { partialSuccess: { rejectedSpans: partial.rejectedSpans, errorMessage: partial.errorMessage } } : {};
  return response.encode(response.create(payload)).finish();
}

/** google.rpc.Status, the body of an OTLP/HTTP error reply in protobuf. */
export function encodeRpcStatus(code: number, message: string): Uint8Array {
  const { status } = otlpTypes();
  return status.encode(status.create({ code, message })).finish();
}

export function decodeExportResponse(body: Uint8Array): Record<string, unknown> {
  const { response } = otlpTypes();
  return response.toObject(response.decode(body), { longs: Number });
}
