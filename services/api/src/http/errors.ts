/**
 * An error the api answers with `{ error: { code, message, details } }`.
 * `code` is stable and machine-readable; `message` says what to fix.
 */
export class HttpError extends Error {
  override readonly name = "HttpError";
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
  }
}

export const notFound = (what: string, id: string) =>
  new HttpError(404, "not_found", `No ${what} with id "${id}". Check the id returned when it was created.`);

/** A 429 or 503 the caller should retry after `retryAfterSeconds`: answered with `Retry-After`. */
export class RetryLaterError extends HttpError {
  constructor(
    status: 429 | 503,
    code: string,
    message: string,
    readonly retryAfterSeconds: number,
    details?: unknown,
  ) {
    super(status, code, message, details);
  }
}

/** 503: a dependency (Redis) is down; the caller should retry after `retryAfterSeconds`. */
export class UnavailableError extends RetryLaterError {
  constructor(message: string, retryAfterSeconds = 5, details?: unknown) {
    super(503, "unavailable", message, retryAfterSeconds, details);
  }
}

const REDIS_DOWN_PATTERNS = [
  /enableOfflineQueue/i,
  /Connection is closed/i,
  /Stream isn't writeable/i,
  /Reached the max retries per request limit/i,
  /ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE|ENOTFOUND|EHOSTUNREACH/,
];

/** True for the errors ioredis/BullMQ raise when Redis cannot be reached (not for script or data errors). */
export function isConnectionError(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  if (err.name === "MaxRetriesPerRequestError" || err.name === "TimeoutError") return true;
  const code = (err as { code?: unknown }).code;
  const text = `${typeof code === "string" ? code : ""} ${err.message}`;
  return REDIS_DOWN_PATTERNS.some((re) => re.test(text));
}

/** Reject with a TimeoutError if `promise` does not settle within `ms`. */
export async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const err = new Error(`${what} did not finish within ${ms} ms`);
      err.name = "TimeoutError";
      reject(err);
    }, ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
