import express, { type NextFunction, type Request, type Response } from "express";
import type { ApiKeys, Caller } from "@tracelane/api-keys";
import type { Logger } from "@tracelane/tracing";
import type { SpanRecord } from "@tracelane/trace-store";
import type { IngestOrigin } from "../assemble/assembler.js";
import { CollectorStats } from "../stats.js";
import { OtlpDecodeError, type DecodedSpans } from "./otlp-common.js";
import { decodeOtlpJson } from "./otlp-json.js";
import { decodeOtlpProtobuf, encodeExportResponse, encodeRpcStatus } from "./otlp-protobuf.js";

const JSON_TYPE = "application/json";
const PROTOBUF_TYPES = ["application/x-protobuf", "application/protobuf"];

/** google.rpc.Code values used by OTLP/HTTP error bodies. */
const INVALID_ARGUMENT = 3;
const UNAVAILABLE = 14;
const UNAUTHENTICATED = 16;

type Encoding = "json" | "protobuf";

export interface OtlpHttpDeps {
  /** `refused`: spans of a trace that belongs to another key (counted and reported as rejected). */
  ingest: (spans: readonly SpanRecord[], origin: IngestOrigin) => Promise<{ refused: number }>;
  /** When enabled, POST /v1/traces needs `Authorization: Bearer <key>` (401 otherwise). */
  apiKeys?: ApiKeys;
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
    // Before the body is read: an unauthenticated sender costs no parsing.
    (req, res, next) => {
      if (!deps.apiKeys?.enabled) return next();
      const auth = deps.apiKeys.authenticate(req.headers.authorization);
      if (auth.outcome === "ok") {
        res.locals.caller = auth.caller;
        return next();
      }
      stats.unauthorizedRequests++;
      res.setHeader("www-authenticate", 'Bearer realm="tracelane"');
      const why = auth.outcome === "none" ? "The Authorization header is missing." : auth.reason;
      reply(
        res,
        encodingOf(req),
        401,
        UNAUTHENTICATED,
        `${why} Send Authorization: Bearer <api key> (an OpenTelemetry exporter: OTEL_EXPORTER_OTLP_HEADERS=Authorization=Bearer%20<api key>).`,
      );
    },
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
      const caller = res.locals.caller as Caller | undefined;
      let refused: number;
      try {
        ({ refused } = await deps.ingest(decoded.spans, { source: "otlp", ...(caller ? { caller } : {}) }));
      } catch (err) {
        deps.logger?.error({ err }, "OTLP/HTTP ingest failed");
        res.setHeader("retry-after", "5");
        reply(res, encoding, 503, UNAVAILABLE, "trace storage is unavailable; retry later");
        return;
      }
      stats.rejectedSpans += decoded.rejected.length;
      const problems: string[] = [];
      if (decoded.rejected.length > 0) {
        problems.push(`${decoded.rejected.length} span(s) malformed; first: ${decoded.rejected[0]!.path}: ${decoded.rejected[0]!.reason}`);
      }
      if (refused > 0) {
        problems.push(
          `${refused} span(s) refused: their trace was created by tracelane's own services and belongs to another API key; send them with the key that owns the trace (or an admin key)`,
        );
      }
      const partial =
        problems.length > 0 ? { rejectedSpans: decoded.rejected.length + refused, errorMessage: problems.join("; ") } : undefined;
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
