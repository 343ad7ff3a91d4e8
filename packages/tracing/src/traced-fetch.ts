import { context, SpanKind, SpanStatusCode, trace, type Attributes, type Context, type Span } from "@opentelemetry/api";
import { injectContext, type Carrier } from "./carrier.js";
import { errorType } from "./errors.js";
import {
  ATTR_ERROR_TYPE,
  ATTR_HTTP_REQUEST_METHOD,
  ATTR_HTTP_REQUEST_RESEND_COUNT,
  ATTR_HTTP_RESPONSE_STATUS_CODE,
  ATTR_RETRY_DELAY_MS,
  ATTR_SERVER_ADDRESS,
  ATTR_SERVER_PORT,
  ATTR_URL_FULL,
  EVENT_RETRY,
} from "./attributes.js";

const tracer = () => trace.getTracer("@tracelane/tracing/http-client");

/** Kept while attempts under a parent fail: what the next attempt (a resend) needs to know. */
interface AttemptHistory {
  attempts: number;
  lastEndedAt: number;
  /** Status code of the last attempt, or its error type when it got no response. */
  lastStatusCode: number | undefined;
  lastErrorType: string | undefined;
}

// Keyed by the parent span object: entries vanish with the span, and a retry loop
// (the openai client's) runs every attempt under the same parent.
const historyByParent = new WeakMap<Span, AttemptHistory>();

export interface TracedFetchOptions {
  /** Send `traceparent`/`tracestate` with each request so a traced server continues the trace; default true. */
  propagate?: boolean;
}

/**
 * A fetch whose every call is one HTTP attempt: a CLIENT span named after the
 * method, child of the active span (pass it to the openai client as `fetch`;
 * the client calls fetch once per attempt and retries by itself).
 *
 * A call that follows a failed attempt (no response or status >= 400) under
 * the same parent span is a resend: attempts are numbered with
 * `http.request.resend_count` (0, 1, 2...), resends carry
 * `tracelane.retry.delay_ms` (time since the previous attempt ended) and add a
 * `retry` event to the parent. Run each logical request under its own span
 * (withChatSpan does), or concurrent calls could count as resends.
 *
 * Request headers are never recorded (Authorization!), and url.full has
 * credentials and secret-looking query values removed. The span ends when the
 * response headers arrive, not when the body has been read.
 */
export function createTracedFetch(baseFetch: typeof fetch = globalThis.fetch, opts: TracedFetchOptions = {}): typeof fetch {
  const propagate = opts.propagate ?? true;
  const tracedFetch = async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const parentContext = context.active();
    const parent = trace.getSpan(parentContext);
    const previous = parent ? historyByParent.get(parent) : undefined;
    const resendCount = previous?.attempts ?? 0;
    const startedAt = Date.now();
    const method = (init?.method ?? (input instanceof Request ? input.method : "GET")).toUpperCase();
    const url = new URL(input instanceof Request ? input.url : input);

    const attributes: Attributes = {
      [ATTR_HTTP_REQUEST_METHOD]: method,
      [ATTR_URL_FULL]: sanitizeUrl(url),
      [ATTR_SERVER_ADDRESS]: url.hostname,
      [ATTR_SERVER_PORT]: url.port ? Number(url.port) : url.protocol === "https:" ? 443 : 80,
      [ATTR_HTTP_REQUEST_RESEND_COUNT]: resendCount,
    };
    if (previous) {
      const delayMs = startedAt - previous.lastEndedAt;
      attributes[ATTR_RETRY_DELAY_MS] = delayMs;
      parent?.addEvent(EVENT_RETRY, {
        [ATTR_HTTP_REQUEST_RESEND_COUNT]: resendCount,
        [ATTR_RETRY_DELAY_MS]: delayMs,
        ...(previous.lastStatusCode !== undefined ? { [ATTR_HTTP_RESPONSE_STATUS_CODE]: previous.lastStatusCode } : {}),
        ...(previous.lastErrorType !== undefined ? { [ATTR_ERROR_TYPE]: previous.lastErrorType } : {}),
      });
    }
    const span = tracer().startSpan(method, { kind: SpanKind.CLIENT, attributes }, parentContext);
    const spanContext = trace.setSpan(parentContext, span);

    let statusCode: number | undefined;
    let failure: string | undefined;
    try {
      const response = await context.with(spanContext, () =>
        baseFetch(input, propagate ? withTraceHeaders(input, init, spanContext) : init),
      );
      statusCode = response.status;
      span.setAttribute(ATTR_HTTP_RESPONSE_STATUS_CODE, statusCode);
      // Only 5xx is an error here: whether a 4xx is one (a 429 gets retried, a 400 does not) is the
      // caller's call, and withChatSpan records the final outcome.
      if (statusCode >= 500) {
        failure = String(statusCode);
        span.setStatus({ code: SpanStatusCode.ERROR });
        span.setAttribute(ATTR_ERROR_TYPE, failure);
      }
      return response;
    } catch (err) {
      const error = err instanceof Error ? err : new Error(String(err));
      failure = networkErrorType(error);
      span.recordException(error);
      span.setStatus({ code: SpanStatusCode.ERROR, message: error.message });
      span.setAttribute(ATTR_ERROR_TYPE, failure);
      throw err;
    } finally {
      span.end();
      // A request after a failed attempt is a resend; one after an answered request is a new request.
      if (parent && (statusCode === undefined || statusCode >= 400)) {
        historyByParent.set(parent, {
          attempts: resendCount + 1,
          lastEndedAt: Date.now(),
          lastStatusCode: statusCode,
          lastErrorType: statusCode === undefined ? failure : undefined,
        });
      } else if (parent) {
        historyByParent.delete(parent);
      }
    }
  };
  return tracedFetch as typeof fetch;
}

/** `fetch failed` (TypeError) says little; the cause's code (ECONNREFUSED, UND_ERR_SOCKET...) says what broke. */
function networkErrorType(error: Error): string {
  const cause = (error as { cause?: unknown }).cause;
  const code = cause && typeof cause === "object" ? (cause as { code?: unknown }).code : undefined;
  return typeof code === "string" && code ? code : errorType(error);
}

function withTraceHeaders(input: string | URL | Request, init: RequestInit | undefined, ctx: Context): RequestInit | undefined {
  const carrier = injectContext<Carrier>({}, ctx);
  if (!carrier.traceparent) return init;
  const headers = new Headers(init?.headers ?? (input instanceof Request ? input.headers : undefined));
  headers.set("traceparent", carrier.traceparent);
  if (carrier.tracestate) headers.set("tracestate", carrier.tracestate);
  return { ...init, headers };
}

// Query keys whose values are credentials (api keys, tokens, presigned-URL signatures).
const SECRET_QUERY_KEY = /key|token|secret|sig|signature|password|passwd|auth|credential|session/i;

/** url.full without user:password and with secret-looking query values replaced (HTTP semconv). */
export function sanitizeUrl(url: URL): string {
  const clean = new URL(url);
  clean.username = "";
  clean.password = "";
  for (const key of new Set(clean.searchParams.keys())) {
    if (SECRET_QUERY_KEY.test(key)) clean.searchParams.set(key, "REDACTED");
  }
  return clean.toString();
}
