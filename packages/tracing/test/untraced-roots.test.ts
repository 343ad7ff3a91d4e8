import { createServer, type Server } from "node:http";
import { ROOT_CONTEXT, SpanKind, trace, TraceFlags } from "@opentelemetry/api";
import { AlwaysOnSampler, SamplingDecision } from "@opentelemetry/sdk-trace-base";
import { waitFor } from "@tracelane/testkit";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { createLogger, httpServerTracing, UntracedHttpRootsSampler } from "../src/index.js";
import { useInMemoryTracing, type InMemoryTracing } from "../src/testing.js";

const TRACE_ID = "0af7651916cd43dd8448eb211c80319c";
const CALLER_SPAN_ID = "b7ad6b7169203331";
const isRead = ({ method }: { method: string }) => method === "GET" || method === "HEAD";

describe("untraced HTTP roots (UntracedHttpRootsSampler through httpServerTracing)", () => {
  let tracing: InMemoryTracing;
  let server: Server;
  let baseUrl: string;
  const logLines: string[] = [];

  beforeAll(async () => {
    tracing = useInMemoryTracing({ untracedRoots: isRead });
    const middleware = httpServerTracing();
    const logger = createLogger("untraced-test", {
      level: "info",
      format: "json",
      destination: { write: (l: string) => void logLines.push(l) },
    });
    server = createServer((req, res) =>
      middleware(req, res, () => {
        // What a handler does: a child span and a log line, inside the request's context.
        trace.getTracer("test").startActiveSpan("handler work", (child) => {
          logger.info({ path: req.url }, "handled");
          child.end();
        });
        res.end("ok");
      }),
    );
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const address = server.address();
    if (address === null || typeof address === "string") throw new Error("no port");
    baseUrl = `http://127.0.0.1:${address.port}`;
  });
  beforeEach(() => {
    tracing.reset();
    logLines.length = 0;
  });
  afterAll(async () => {
    await new Promise((resolve) => server.close(resolve));
    await tracing.shutdown();
  });

  const request = async (method: string, path: string, headers: Record<string, string> = {}) => {
    const res = await fetch(`${baseUrl}${path}`, { method, headers });
    await res.text();
  };
  /** The spans recorded once the SERVER span of a traced request sent after the ones under test has ended. */
  const spansSettled = async () => {
    await request("POST", "/sentinel");
    await waitFor(() => tracing.spans().find((s) => s.kind === SpanKind.SERVER && s.attributes["url.path"] === "/sentinel"), {
      what: "the sentinel's SERVER span",
    });
    return tracing.spans().filter((s) => s.attributes["url.path"] !== "/sentinel" && s.parentSpanContext?.spanId !== sentinelId());
  };
  const sentinelId = () =>
    tracing
      .spans()
      .find((s) => s.attributes["url.path"] === "/sentinel")
      ?.spanContext().spanId;

  it("records nothing for a request the rule names, yet its log line carries the request's trace and span ids", async () => {
    await request("GET", "/v1/research/abc");
    const line = JSON.parse(logLines[0]!);
    expect(await spansSettled()).toEqual([]);
    expect(line.msg).toBe("handled");
    expect(line.trace_id).toMatch(/^[0-9a-f]{32}$/);
    expect(line.trace_flags).toBe("00");
  });

  it("still traces requests the rule does not name", async () => {
    await request("POST", "/v1/research");
    expect((await spansSettled()).map((s) => s.name)).toEqual(["handler work", "POST"]);
  });

  it("continues a sampled traceparent on a request the rule names", async () => {
    await request("GET", "/v1/research/abc", { traceparent: `00-${TRACE_ID}-${CALLER_SPAN_ID}-01` });
    const spans = await spansSettled();
    expect(spans.map((s) => s.name)).toEqual(["handler work", "GET"]);
    const server = spans.find((s) => s.kind === SpanKind.SERVER)!;
    expect(server.spanContext().traceId).toBe(TRACE_ID);
    expect(server.parentSpanContext?.spanId).toBe(CALLER_SPAN_ID);
  });

  it("does not record a request whose traceparent says not sampled", async () => {
    await request("GET", "/v1/research/abc", { traceparent: `00-${TRACE_ID}-${CALLER_SPAN_ID}-00` });
    expect(await spansSettled()).toEqual([]);
  });
});

describe("UntracedHttpRootsSampler", () => {
  const sampler = new UntracedHttpRootsSampler(new AlwaysOnSampler(), isRead);
  const decide = (ctx: typeof ROOT_CONTEXT, kind: SpanKind, attributes: Record<string, string>) =>
    sampler.shouldSample(ctx, TRACE_ID, "span", kind, attributes, []).decision;
  const unsampledLocalParent = trace.setSpanContext(ROOT_CONTEXT, {
    traceId: TRACE_ID,
    spanId: CALLER_SPAN_ID,
    traceFlags: TraceFlags.NONE,
  });

  it("drops only SERVER roots the rule names, and leaves other roots to the delegate", () => {
    const get = { "http.request.method": "GET", "url.path": "/healthz" };
    expect(decide(ROOT_CONTEXT, SpanKind.SERVER, get)).toBe(SamplingDecision.NOT_RECORD);
    expect(decide(ROOT_CONTEXT, SpanKind.SERVER, { ...get, "http.request.method": "POST" })).toBe(SamplingDecision.RECORD_AND_SAMPLED);
    expect(decide(ROOT_CONTEXT, SpanKind.INTERNAL, get)).toBe(SamplingDecision.RECORD_AND_SAMPLED);
    expect(decide(ROOT_CONTEXT, SpanKind.CONSUMER, {})).toBe(SamplingDecision.RECORD_AND_SAMPLED);
  });

  it("records nothing below a span this process did not record, even over an always_on delegate", () => {
    expect(decide(unsampledLocalParent, SpanKind.INTERNAL, {})).toBe(SamplingDecision.NOT_RECORD);
  });
});
