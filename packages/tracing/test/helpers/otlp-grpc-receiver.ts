import { Server, ServerCredentials, status, type ServiceDefinition } from "@grpc/grpc-js";
import protobuf from "protobufjs";
import { OTLP_TRACE_PROTO_FILES } from "../../src/otlp-proto.js";

const protoRoot = new protobuf.Root();
for (const file of OTLP_TRACE_PROTO_FILES) protobuf.parse(file, protoRoot, { keepCase: true });
const ExportTraceServiceRequest = protoRoot.lookupType("opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest");

type AttributeValue = string | number | boolean | AttributeValue[] | undefined;

export interface DecodedSpan {
  traceId: string;
  spanId: string;
  parentSpanId: string;
  traceState: string;
  name: string;
  kind: number;
  attributes: Record<string, AttributeValue>;
  statusCode: number;
  scope: string;
}

export interface DecodedExport {
  resource: Record<string, AttributeValue>;
  spans: DecodedSpan[];
}

interface RawKeyValue {
  key: string;
  value?: RawAnyValue;
}
interface RawAnyValue {
  /** protobufjs' virtual oneof field: the name of the member that is set. */
  value?: "string_value" | "bool_value" | "int_value" | "double_value" | "array_value" | "kvlist_value" | "bytes_value";
  string_value?: string;
  bool_value?: boolean;
  int_value?: { toNumber(): number } | number;
  double_value?: number;
  array_value?: { values?: RawAnyValue[] };
}
interface RawRequest {
  resource_spans?: Array<{
    resource?: { attributes?: RawKeyValue[] };
    scope_spans?: Array<{
      scope?: { name?: string };
      spans?: Array<{
        trace_id: Uint8Array;
        span_id: Uint8Array;
        parent_span_id?: Uint8Array;
        trace_state?: string;
        name: string;
        kind?: number;
        attributes?: RawKeyValue[];
        status?: { code?: number };
      }>;
    }>;
  }>;
}

const hex = (bytes: Uint8Array | undefined) => Buffer.from(bytes ?? []).toString("hex");

function anyValue(v: RawAnyValue | undefined): AttributeValue {
  // Unset oneof members read as their proto3 defaults, so go by the discriminator.
  switch (v?.value) {
    case "string_value":
      return v.string_value;
    case "bool_value":
      return v.bool_value;
    case "int_value":
      return typeof v.int_value === "number" ? v.int_value : v.int_value?.toNumber();
    case "double_value":
      return v.double_value;
    case "array_value":
      return (v.array_value?.values ?? []).map(anyValue);
    default:
      return undefined;
  }
}

const attributes = (kvs: RawKeyValue[] | undefined) => Object.fromEntries((kvs ?? []).map((kv) => [kv.key, anyValue(kv.value)]));

/** Decode the protobuf body of one TraceService/Export call. */
export function decodeExportRequest(body: Buffer): DecodedExport[] {
  const request = ExportTraceServiceRequest.decode(body) as unknown as RawRequest;
  return (request.resource_spans ?? []).map((rs) => ({
    resource: attributes(rs.resource?.attributes),
    spans: (rs.scope_spans ?? []).flatMap((ss) =>
      (ss.spans ?? []).map((s) => ({
        traceId: hex(s.trace_id),
        spanId: hex(s.span_id),
        parentSpanId: hex(s.parent_span_id),
        traceState: s.trace_state ?? "",
        name: s.name,
        kind: s.kind ?? 0,
        attributes: attributes(s.attributes),
        statusCode: s.status?.code ?? 0,
        scope: ss.scope?.name ?? "",
      })),
    ),
  }));
}

export interface OtlpGrpcReceiver {
  url: string;
  /** Every decoded Export call so far. */
  exports: DecodedExport[][];
  spans(): DecodedSpan[];
  close(): Promise<void>;
}

// Raw bytes in and out: the request is decoded by the test, and an empty body is a valid
// (all-default) ExportTraceServiceResponse.
const identity = (b: Buffer) => b;
const traceService: ServiceDefinition = {
  Export: {
    path: "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
    requestStream: false,
    responseStream: false,
    requestSerialize: identity,
    requestDeserialize: identity,
    responseSerialize: identity,
    responseDeserialize: identity,
  },
};

/** A real gRPC server implementing OTLP TraceService/Export on a free port. */
export async function startOtlpGrpcReceiver(): Promise<OtlpGrpcReceiver> {
  const exports: DecodedExport[][] = [];
  const server = new Server();
  server.addService(traceService, {
    Export: (call: { request: Buffer }, callback: (err: { code: number; details: string } | null, res?: Buffer) => void) => {
      try {
        exports.push(decodeExportRequest(call.request));
        callback(null, Buffer.alloc(0));
      } catch (err) {
        callback({ code: status.INVALID_ARGUMENT, details: String(err) });
      }
    },
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  return {
    url: `http://127.0.0.1:${port}`,
    exports,
    spans: () => exports.flatMap((e) => e.flatMap((rs) => rs.spans)),
    close: () => new Promise<void>((resolve) => server.tryShutdown(() => resolve())),
  };
}
