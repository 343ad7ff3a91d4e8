import { randomUUID } from "node:crypto";
import type { RequestHandler, Response } from "express";

/** A caller's own request id is kept when it is short and plain; anything else is replaced, never echoed. */
const REQUEST_ID_RE = /^[A-Za-z0-9._:-]{1,128}$/;

/**
 * `X-Request-Id` on every response (the caller's if it is a plain token, else a new UUID), so a 500 can be
 * matched to its log line even when the request started no trace (reads are not traced by default).
 */
export const requestId: RequestHandler = (req, res, next) => {
  const given = req.headers["x-request-id"];
  const id = typeof given === "string" && REQUEST_ID_RE.test(given) ? given : randomUUID();
  res.locals.requestId = id;
  res.setHeader("X-Request-Id", id);
  next();
};

/** The request id `requestId` gave this response ("unknown" before it ran). */
export const requestIdOf = (res: Response): string => (typeof res.locals.requestId === "string" ? res.locals.requestId : "unknown");

/**
 * Headers every answer carries. API JSON is per-user and live: never cached (`no-store`); the console's
 * static assets set their own caching after this. `nosniff` keeps a browser from reading JSON or text
 * as script; pages may not be framed.
 */
export const securityHeaders: RequestHandler = (_req, res, next) => {
  res.setHeader("X-Content-Type-Options", "nosniff");
  res.setHeader("Cache-Control", "no-store");
  res.setHeader("Referrer-Policy", "no-referrer");
  res.setHeader("X-Frame-Options", "DENY");
  next();
};

/**
 * The console's Content-Security-Policy: its own scripts, styles and api only (it needs no network beyond
 * the api), no inline script, no framing. Not applied to Bull Board, whose page needs inline script.
 */
export const CONSOLE_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "font-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join("; ");

export const consoleCsp: RequestHandler = (_req, res, next) => {
  res.setHeader("Content-Security-Policy", CONSOLE_CSP);
  next();
};
