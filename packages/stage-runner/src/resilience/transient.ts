import { APIConnectionError, APIError } from "openai";
import { ModelCallError } from "../errors.js";

const TRANSIENT_STATUS = new Set([408, 409, 429, 500, 502, 503, 504]);

/**
 * Worth retrying: rate limits, server errors, timeouts, dropped connections and
 * malformed bodies. Auth failures and invalid requests are not.
 */
export function isTransient(err: unknown): boolean {
  if (err instanceof APIConnectionError) return true; // includes timeouts
  if (err instanceof APIError) return err.status !== undefined && TRANSIENT_STATUS.has(err.status);
  if (err instanceof SyntaxError) return true; // a body that is not JSON
  if (err instanceof ModelCallError) return err.type === "malformed_response";
  return false;
}

/** The server's own wait hint, from `retry-after-ms` or `retry-after` (seconds or an HTTP date). */
export function retryAfterMs(err: unknown, now = Date.now()): number | undefined {
  if (!(err instanceof APIError) || !err.headers) return undefined;
  const headers = err.headers as Headers;
  const ms = Number(headers.get("retry-after-ms"));
  if (Number.isFinite(ms) && ms >= 0 && headers.get("retry-after-ms") !== null) return ms;
  const raw = headers.get("retry-after");
  if (raw === null) return undefined;
  const seconds = Number(raw);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const date = Date.parse(raw);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

/** Exponential backoff with full jitter, capped; the server's Retry-After wins when present. */
export function backoffDelay(attempt: number, err: unknown, opts: { baseMs: number; maxMs: number }, random = Math.random): number {
  const hinted = retryAfterMs(err);
  if (hinted !== undefined) return Math.min(hinted, opts.maxMs);
  const exp = Math.min(opts.maxMs, opts.baseMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(exp / 2 + random() * (exp / 2));
}
