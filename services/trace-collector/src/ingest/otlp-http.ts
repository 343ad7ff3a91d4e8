import express, { type NextFunction, type Request, type Response } from "express";
import type { Logger } from "@tracelane/tracing";
import type { SpanRecord } from "@tracelane/trace-store";
import { CollectorStats } from "../stats.js";
import { OtlpDecodeError, type DecodedSpans } from "./otlp-common.js";
import { decodeOtlpJson } from "./otlp-json.js";
import { decodeOtlpProtobuf, encodeExportResponse, encodeRpcStatus } from "./otlp-protobuf.js";

const JSON_TYPE = "application/json";
const PROTOBUF_TYPES = ["application/x-protobuf", "application/protobuf"];

/** google.rpc.Code values used by OTLP/HTTP error bodies. */
const INVALID_ARGUMENT = 3;
const UNAVAILABLE = 14;

type Encoding = "json" | "protobuf";

export interface OtlpHttpDeps {
  ingest: (spans: readonly SpanRecord[]) => Promise<unknown>;
  stats?: CollectorStats;
  logger?: Pick<Logger, "warn" | "error">;
  /** Largest accepted (decompressed) body. */
  maxBodyBytes?: number;
}

function reply(res: Response, encoding: Encoding, status: number, code: number, message: string): void {
  if (encoding === "protobuf") {
    res
      .status(status)
      .type("application/x-protobuf")
      .send(Buffer.from(encodeRpcStatus(code, message)));
  } else {
    res.status(status).json({ code, message });
  }
}

/**
 * OTLP/HTTP trace receiver: POST /v1/traces with application/json or application/x-protobuf
 * (gzip/deflate bodies are inflated). Answers like an OTLP receiver: 200 with an
 * ExportTraceServiceResponse (partial_success when some spans were malformed), 400 with a
 * google.rpc.Status for an unreadable body, 415 for other content types, 503 when storage is down.
 */
export function otlpHttpRouter(deps: OtlpHttpDeps): express.Router {
  const router = express.Router();
  const stats = deps.stats ?? new CollectorStats();
  const encodingOf = (req: Request): Encoding => (req.is(PROTOBUF_TYPES) ? "protobuf" : "json");

  router.post(
    "/v1/traces",
    (req, res, next) => {
      if (req.is([JSON_TYPE, ...PROTOBUF_TYPES])) return next();
      const got = req.headers["content-type"] ?? "none";
      reply(res, "json", 415, INVALID_ARGUMENT, `unsupported content-type "${got}"; send ${JSON_TYPE} or application/x-protobuf`);
    },
    express.raw({ type: () => true, limit: deps.maxBodyBytes ?? 16 * 1024 * 1024, inflate: true }),
    async (req, res) => {
      stats.otlpHttpRequests++;
      const encoding = encodingOf(req);
      const body: Buffer = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
      let decoded: DecodedSpans;
      try {
        decoded = encoding === "protobuf" ? decodeOtlpProtobuf(body) : decodeOtlpJson(body);
      } catch (err) {
        if (!(err instanceof OtlpDecodeError)) throw err;
        reply(res, encoding, 400, INVALID_ARGUMENT, `invalid OTLP ${encoding} ExportTraceServiceRequest: ${err.message}`);
        return;
      }
      try {
        await deps.ingest(decoded.spans);
      } catch (err) {
        deps.logger?.error({ err }, "OTLP/HTTP ingest failed");
        res.setHeader("retry-after", "5");
        reply(res, encoding, 503, UNAVAILABLE, "trace storage is unavailable; retry later");
        return;
      }
      stats.rejectedSpans += decoded.rejected.length;
      const partial =
        decoded.rejected.length > 0
          ? {
              rejectedSpans: decoded.rejected.length,
              errorMessage: `${decoded.rejected.length} span(s) rejected; first: ${decoded.rejected[0]!.path}: ${decoded.rejected[0]!.reason}`,
            }
          : undefined;
      if (encoding === "protobuf") {
        res
          .status(200)
          .type("application/x-protobuf")
          .send(Buffer.from(encodeExportResponse(partial)));
      } else {
        res.status(200).json(partial ? { partialSuccess: partial } : {});
      }
    },
  );

  // Body-parser failures (too large, bad gzip) in OTLP form rather than express' HTML page.
  router.use("/v1/traces", (err: unknown, req: Request, res: Response, next: NextFunction) => {
    if (res.headersSent) return next(err);
    const status = (err as { status?: number }).status ?? 500;
    const message = err instanceof Error ? err.message : String(err);
    if (status >= 500) deps.logger?.error({ err }, "OTLP/HTTP request failed");
    reply(res, encodingOf(req), status, status === 413 || status < 500 ? INVALID_ARGUMENT : UNAVAILABLE, message);
  });
  return router;
}
