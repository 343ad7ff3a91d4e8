import type { ErrorRequestHandler, RequestHandler } from "express";
import { trace } from "@opentelemetry/api";
import { currentTraceId, recordError, type Logger } from "@tracelane/tracing";
import { HttpError, isConnectionError, RetryLaterError, UnavailableError } from "./errors.js";
import { requestIdOf } from "./response-headers.js";

/** Errors raised by express.json() (body-parser) carry a `type`; see body-parser's README. */
interface BodyParserError extends Error {
  type: string;
  status?: number;
  body?: string;
  limit?: number;
  length?: number;
  charset?: string;
  encoding?: string;
}

const isBodyParserError = (err: unknown): err is BodyParserError =>
  err instanceof Error && typeof (err as { type?: unknown }).type === "string" && "status" in err;

/** "line 3 column 7" for a 0-based character offset into `text`. */
export function lineColumn(text: string, offset: number): { line: number; column: number } {
  const before = text.slice(0, offset);
  const line = before.split("\n").length;
  const column = offset - (before.lastIndexOf("\n") + 1) + 1;
  return { line, column };
}

/** A JSON syntax error described so a person can find and fix it. */
export function describeJsonError(err: Error, body: string | undefined): { message: string; details: object } {
  const raw = body ?? "";
  const first = /\S/.exec(raw)?.[0];
  if (first !== undefined && first !== "{" && first !== "[") {
    return {
      message: `The request body must be a JSON object like {"query": "..."}; it starts with ${JSON.stringify(first)} at line 1. Send an object, not a bare value.`,
      details: { position: raw.indexOf(first), line: 1, column: raw.indexOf(first) + 1 },
    };
  }
  // V8: "Expected ':' after property name in JSON at position 9", "Unexpected end of JSON input",
  // "Unexpected token 'x', \"...\" is not valid JSON".
  const reason = err.message.replace(/,\s*".*" is not valid JSON$/s, "").replace(/ in JSON at position \d+.*$/s, "");
  const posMatch = / at position (\d+)/.exec(err.message);
  const position = posMatch ? Number(posMatch[1]) : /Unexpected end of JSON input/.test(err.message) ? raw.length : undefined;
  if (position === undefined) {
    return { message: `The request body is not valid JSON: ${reason}. Fix the JSON syntax and send it again.`, details: { reason } };
  }
  const { line, column } = lineColumn(raw, position);
  return {
    message: `The request body is not valid JSON: ${reason} at line ${line} column ${column} (character ${position}). Fix the JSON syntax and send it again.`,
    details: { reason, position, line, column },
  };
}

/** Map body-parser errors to our HttpErrors; anything else stays as is. */
export function fromBodyParserError(err: BodyParserError, maxBodyBytes: number): HttpError | undefined {
  switch (err.type) {
    case "entity.parse.failed": {
      const { message, details } = describeJsonError(err, err.body);
      return new HttpError(400, "invalid_json", message, details);
    }
    case "entity.too.large":
      return new HttpError(
        413,
        "payload_too_large",
        `The request body is ${err.length !== undefined ? `${err.length} bytes` : "too large"}; the limit is ${maxBodyBytes} bytes. Send a smaller body (a shorter query).`,
        { limitBytes: maxBodyBytes, ...(err.length !== undefined ? { receivedBytes: err.length } : {}) },
      );
    case "charset.unsupported":
      return new HttpError(
        415,
        "unsupported_media_type",
        `Charset "${err.charset}" is not supported. Send the body as UTF-8 JSON (Content-Type: application/json).`,
      );
    case "encoding.unsupported":
      return new HttpError(
        415,
        "unsupported_media_type",
        `Content-Encoding "${err.encoding}" is not supported. Send gzip, deflate, br or identity.`,
      );
    case "request.aborted":
      return new HttpError(400, "request_aborted", "The request body was not received completely (the client aborted it).");
    case "request.size.invalid":
      return new HttpError(400, "invalid_request", "The request body length does not match its Content-Length header.");
    default:
      return undefined;
  }
}

/** Record a server-side failure on the request's SERVER span (exception event, ERROR, error.type). */
function recordOnActiveSpan(err: unknown): void {
  const span = trace.getActiveSpan();
  if (span) recordError(span, err);
}

const isClientError = (err: unknown): err is Error & { status: number; expose?: boolean } => {
  const status = (err as { status?: unknown } | null)?.status;
  return err instanceof Error && typeof status === "number" && status >= 400 && status < 500;
};

/** 404 in our error shape for any route that does not exist. */
export const notFoundRoute: RequestHandler = (req, _res, next) => {
  next(new HttpError(404, "not_found", `There is no route ${req.method} ${req.path}. See the api README for the endpoints.`));
};

/**
 * Renders HttpError as `{ error: { code, message, details } }`; Redis outages as 503; everything
 * else as a 500 that says nothing about internals. Unexpected errors are logged here, once.
 */
export function errorHandler(opts: { logger: Logger; maxBodyBytes: number }): ErrorRequestHandler {
  return (err, req, res, next) => {
    if (res.headersSent) {
      // Streaming responses (SSE) already committed; nothing can be rendered.
      opts.logger.warn({ err, method: req.method, path: req.path }, "error after response started");
      next(err);
      return;
    }
    let httpError: HttpError | undefined;
    if (err instanceof HttpError) httpError = err;
    else if (isBodyParserError(err)) httpError = fromBodyParserError(err, opts.maxBodyBytes);
    if (!httpError && isClientError(err)) {
      // http-errors raised by express itself (e.g. a path parameter that is not valid percent-encoding).
      httpError = new HttpError(err.status, "invalid_request", err.expose ? err.message : "The request is malformed.");
    } else if (!httpError && isConnectionError(err)) {
      recordOnActiveSpan(err);
      opts.logger.warn({ err: { name: err.name, message: err.message }, method: req.method, path: req.path }, "redis unavailable");
      httpError = new UnavailableError("The service cannot reach its data store right now. Retry in a few seconds.");
    }
    if (!httpError) {
      recordOnActiveSpan(err);
      const rid = requestIdOf(res);
      opts.logger.error({ err, method: req.method, path: req.path, requestId: rid }, "unhandled error");
      const traceId = currentTraceId();
      // Nothing of the error itself reaches the caller: only ids to find it in the logs and traces.
      httpError = new HttpError(
        500,
        "internal_error",
        `Something went wrong on our side. Retry later; if it persists, report it with request id ${rid}${traceId ? ` (trace id ${traceId})` : ""}.`,
        { requestId: rid, ...(traceId ? { traceId } : {}) },
      );
    }
    if (httpError instanceof RetryLaterError) res.setHeader("Retry-After", String(httpError.retryAfterSeconds));
    res.status(httpError.status).json({
      error: { code: httpError.code, message: httpError.message, details: httpError.details ?? null },
    });
  };
}
