import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { SpanKind, SpanStatusCode, trace } from "@opentelemetry/api";
import { waitFor } from "@tracelane/testkit";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { currentTraceId, httpServerTracing, injectContext } from "../src/index.js";
import { useInMemoryTracing, type InMemoryTracing } from "../src/testing.js";
import { ATTR_ERROR_TYPE, ATTR_HTTP_REQUEST_METHOD, ATTR_HTTP_RESPONSE_STATUS_CODE, ATTR_HTTP_ROUTE } from "@tracelane/tracing/attributes";

const TRACE_ID = "0af7651916cd43dd8448eb211c80319c";
const CALLER_SPAN_ID = "b7ad6b7169203331";
const TRACESTATE = "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7";

type ExpressLike = IncomingMessage & { route?: { path: string }; baseUrl?: string };

describe("httpServerTracing", () => {
  let tracing: InMemoryTracing;
  let server: Server;
  let baseUrl: string;

  beforeAll(async () => {
    tracing = useInMemoryTracing();
    const middleware = httpServerTracing();
    // Plain node:http; the handler plays Express by setting req.route/baseUrl the way its router does.
    server = createServer((req: IncomingMessage, res: ServerResponse) =>
      middleware(req, res, () => {
        // Answer after an await: the context must survive async hops, not just the synchronous call.
        void Promise.resolve().then(() => {
          if (req.url?.startsWith("/api/research/")) {
            (req as ExpressLike).baseUrl = "/api";
            (req as ExpressLike).route = { path: "/research/:id" };
          }
          res.statusCode = req.url === "/boom" ? 500 : 200;
          res.setHeader("content-type", "application/json");
          res.end(
            JSON.stringify({
              traceId: currentTraceId(),
              carrier: injectContext({}),
              activeSpanId: trace.getActiveSpan()?.spanContext().spanId,
            }),
          );
        });
      }),
    );
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const address = server.address();
    if (address === null || typeof address === "string") throw new Error("no port");
    baseUrl = `http://127.0.0.1:${address.port}`;
  });
  beforeEach(() => tracing.reset());
  afterAll(async () => {
    await new Promise((resolve) => server.close(resolve));
    await tracing.shutdown();
  });

  async function get(path: string, headers: Record<string, string> = {}) {
    const res = await fetch(`${baseUrl}${path}`, { headers });
    const body = (await res.json()) as { traceId?: string; carrier: { traceparent?: string; tracestate?: string }; activeSpanId?: string };
    const span = await waitFor(() => tracing.spans().find((s) => s.kind === SpanKind.SERVER), { what: "the SERVER span" });
    return { status: res.status, body, span };
  }

  it("continues the caller's trace: same trace id, caller span as parent, tracestate kept in the active context", async () => {
    const { status, body, span } = await get("/api/research/42?verbose=1", {
      traceparent: `00-${TRACE_ID}-${CALLER_SPAN_ID}-01`,
      tracestate: TRACESTATE,
      "user-agent": "tracelane-test/1.0",
    });
    expect(status).toBe(200);
    expect(span.spanContext().traceId).toBe(TRACE_ID);
    expect(span.parentSpanContext).toMatchObject({ traceId: TRACE_ID, spanId: CALLER_SPAN_ID, isRemote: true });
    expect(body.traceId).toBe(TRACE_ID);
    expect(body.activeSpanId).toBe(span.spanContext().spanId);
    expect(body.carrier).toEqual({ traceparent: `00-${TRACE_ID}-${span.spanContext().spanId}-01`, tracestate: TRACESTATE });

    expect(span.name).toBe("GET /api/research/:id");
    expect(span.attributes).toMatchObject({
      [ATTR_HTTP_REQUEST_METHOD]: "GET",
      "url.path": "/api/research/42",
      [ATTR_HTTP_ROUTE]: "/api/research/:id",
      [ATTR_HTTP_RESPONSE_STATUS_CODE]: 200,
      "user_agent.original": "tracelane-test/1.0",
    });
    expect(span.status.code).toBe(SpanStatusCode.UNSET);
  });

  it("starts a new trace for a malformed traceparent and still serves the request", async () => {
    const { status, body, span } = await get("/health", { traceparent: `00-${TRACE_ID}-not-hex-at-all-01`, tracestate: TRACESTATE });
    expect(status).toBe(200);
    expect(span.parentSpanContext).toBeUndefined();
    expect(span.spanContext().traceId).not.toBe(TRACE_ID);
    expect(body.traceId).toBe(span.spanContext().traceId);
    expect(body.carrier.tracestate).toBeUndefined();
    expect(span.name).toBe("GET"); // no route known: never the raw path
  });

  it("marks a 5xx response as an error", async () => {
    const { status, span } = await get("/boom");
    expect(status).toBe(500);
    expect(span.status.code).toBe(SpanStatusCode.ERROR);
    expect(span.attributes).toMatchObject({ [ATTR_HTTP_RESPONSE_STATUS_CODE]: 500, [ATTR_ERROR_TYPE]: "500" });
  });
});
