import cors from "cors";
import type { RequestHandler } from "express";

/** Request headers a browser page may send: the key, the body type, idempotency, SSE resume, trace context. */
const ALLOWED_HEADERS = ["Authorization", "Content-Type", "Idempotency-Key", "Last-Event-ID", "traceparent", "tracestate", "X-Request-Id"];
/** Response headers a page may read beyond the CORS-safelisted ones. */
const EXPOSED_HEADERS = ["Location", "Retry-After", "RateLimit", "RateLimit-Policy", "Idempotent-Replayed", "X-Request-Id"];
const METHODS = ["GET", "HEAD", "POST", "DELETE"];
/** How long a browser may cache a preflight answer, seconds. */
const PREFLIGHT_MAX_AGE_SECONDS = 600;

/**
 * CORS for the origins in CORS_ORIGINS (exact `scheme://host[:port]` matches; see env.ts), through the
 * `cors` package: a request from one of them gets `Access-Control-Allow-Origin: <its origin>` (and a
 * preflight OPTIONS its 204 with the methods, headers and max age); any other origin gets no
 * Access-Control-* header at all, and a preflight from it falls through to the routes. No credentials
 * mode: keys travel in the Authorization header, which only needs to be an allowed header. Every
 * answer says `Vary: Origin`, so a cache never hands one origin's answer to another.
 */
export function corsFor(origins: readonly string[]): RequestHandler {
  const allowed = new Set(origins);
  const middleware = cors({
    origin: (origin, callback) => callback(null, origin !== undefined && allowed.has(origin) ? origin : false),
    methods: METHODS,
    allowedHeaders: ALLOWED_HEADERS,
    exposedHeaders: EXPOSED_HEADERS,
    maxAge: PREFLIGHT_MAX_AGE_SECONDS,
    optionsSuccessStatus: 204,
  });
  return (req, res, next) => {
    res.vary("Origin");
    middleware(req, res, next);
  };
}
