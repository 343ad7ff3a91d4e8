import type { IncomingMessage, ServerResponse } from "node:http";
import { context, isSpanContextValid, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Context, type Link } from "@opentelemetry/api";
import { carrierFromHeaders, extractContext } from "./carrier.js";
import { ATTR_ERROR_TYPE, ATTR_HTTP_REQUEST_METHOD, ATTR_HTTP_RESPONSE_STATUS_CODE, ATTR_HTTP_ROUTE, ATTR_URL_PATH } from "./attributes.js";

const tracer = () => trace.getTracer("@tracelane/tracing/http-server");

/** The Express fields read when present; plain node:http requests have none of them. */
type RoutedRequest = IncomingMessage & {
  originalUrl?: string;
  baseUrl?: string;
  route?: { path?: unknown };
};

export interface HttpServerTracingOptions {
  /**
   * Whether this request's incoming trace context may be continued (default: every request's).
   * Called only for a request that carries a valid `traceparent`. When it says no, the request
   * starts a trace of its own (a new trace id, sampled by this process's sampler whatever the
   * caller's sampled flag) with the caller's span context as a link, and its baggage is dropped.
   */
  trustContext?: (req: IncomingMessage) => boolean;
}

/**
 * Connect/Express-style middleware: one SERVER span per request, continuing the
 * caller's `traceparent`/`tracestate` when `trustContext` allows (an invalid traceparent
 * is ignored, per W3C, and the request starts a new trace). Later middleware and the handler run
 * inside the span's context, so their spans, logs and publishes join the trace.
 *
 * The span is named `${method} ${route}` once Express has matched a route
 * (`http.route` = baseUrl + route.path), else `${method}` — never the raw path,
 * which would make span names unbounded.
 */
export function httpServerTracing(opts: HttpServerTracingOptions = {}) {
  return function tracingMiddleware(req: IncomingMessage, res: ServerResponse, next: (err?: unknown) => void): void {
    const method = (req.method ?? "GET").toUpperCase();
    const { parent, links } = incomingParent(req, opts.trustContext);
    // Express rewrites req.url inside routers; originalUrl is what the client asked for.
    const target = (req as RoutedRequest).originalUrl ?? req.url ?? "/";
    const userAgent = req.headers["user-agent"];
    const span = tracer().startSpan(
      method,
      {
        kind: SpanKind.SERVER,
        attributes: {
          [ATTR_HTTP_REQUEST_METHOD]: method,
          [ATTR_URL_PATH]: target.split("?", 1)[0] ?? "/",
          "url.scheme": "encrypted" in req.socket && req.socket.encrypted ? "https" : "http",
          ...(userAgent ? { "user_agent.original": userAgent } : {}),
        },
        ...(links.length > 0 ? { links } : {}),
      },
      parent,
    );
    const ctx = trace.setSpan(parent, span);

    let ended = false;
    const end = () => {
      if (ended) return;
      ended = true;
      const route = routeOf(req as RoutedRequest);
      if (route) {
        span.setAttribute(ATTR_HTTP_ROUTE, route);
        span.updateName(`${method} ${route}`);
      }
      span.setAttribute(ATTR_HTTP_RESPONSE_STATUS_CODE, res.statusCode);
      if (res.statusCode >= 500) {
        span.setStatus({ code: SpanStatusCode.ERROR });
        span.setAttribute(ATTR_ERROR_TYPE, String(res.statusCode));
      } else if (!res.writableFinished) {
        // 'close' before 'finish': the client went away before the response was complete.
        span.setAttribute(ATTR_ERROR_TYPE, "aborted");
      }
      span.end();
    };
    res.once("finish", end);
    res.once("close", end);

    // Listeners that body parsers and handlers add to req/res run in the span's context too.
    context.bind(ctx, req);
    context.bind(ctx, res);
    context.with(ctx, () => next());
  };
}

/** The context to start the SERVER span under, and the untrusted caller's context as a link. */
function incomingParent(req: IncomingMessage, trust: HttpServerTracingOptions["trustContext"]): { parent: Context; links: Link[] } {
  const extracted = extractContext(carrierFromHeaders(req.headers));
  const remote = trace.getSpanContext(extracted);
  if (!trust || !remote || !isSpanContextValid(remote) || trust(req)) return { parent: extracted, links: [] };
  return { parent: ROOT_CONTEXT, links: [{ context: remote }] };
}

function routeOf(req: RoutedRequest): string | undefined {
  const path = req.route?.path;
  if (typeof path !== "string") return undefined;
  const route = `${req.baseUrl ?? ""}${path}`;
  return route === "" ? "/" : route;
}
