import { SpanKind, TraceFlags } from "@opentelemetry/api";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { stageJobId } from "@tracelane/queue-contract";
import { useInMemoryTracing, type InMemoryTracing } from "@tracelane/tracing/testing";
import { postResearch, startApi, uid, type TestApi } from "./helpers.js";

/**
 * TRUST_INCOMING_TRACE_CONTEXT at the api's SERVER span: who may continue a trace. The research's
 * whole trace (stage consumers, model calls) follows the job's carrier, which starts from this span.
 */
const KEY = "trust-test-key-0123456789abcdef";
let tracing: InMemoryTracing;

beforeAll(() => {
  tracing = useInMemoryTracing();
});
afterAll(async () => {
  await tracing?.shutdown();
});
beforeEach(() => tracing.reset());

/** The request's SERVER span (the only one since the reset; named "POST" when auth answered before routing). */
const server = () => tracing.spans().find((s) => s.kind === SpanKind.SERVER)!;
const callerContext = (flags = "01") => {
  const traceId = uid();
  const spanId = uid().slice(0, 16);
  return { traceId, spanId, traceparent: `00-${traceId}-${spanId}-${flags}` };
};

async function jobTraceparent(api: TestApi, id: string): Promise<string | undefined> {
  return (await api.queues.queue("analysis").getJob(stageJobId(id, "analysis")))?.data.trace.traceparent;
}

describe("keyed (the default) with no API keys configured: nobody is trusted", () => {
  let api: TestApi;
  beforeAll(async () => {
    api = await startApi();
  });
  afterAll(async () => {
    await api?.close();
  });

  it("starts a new trace for a stranger's traceparent and keeps the caller's context as a link", async () => {
    const caller = callerContext();
    const res = await postResearch(api, { query: "stranger" }, { traceparent: caller.traceparent });
    expect(res.status).toBe(202);
    expect(res.body.traceId).toMatch(/^[0-9a-f]{32}$/);
    expect(res.body.traceId).not.toBe(caller.traceId);
    const span = server();
    expect(span.spanContext().traceId).toBe(res.body.traceId);
    expect(span.parentSpanContext).toBeUndefined();
    expect(span.links).toHaveLength(1);
    expect(span.links[0]!.context).toMatchObject({ traceId: caller.traceId, spanId: caller.spanId, isRemote: true });
    // The job carries the research's own trace, not the caller's.
    expect(await jobTraceparent(api, res.body.id)).toContain(`-${res.body.traceId}-`);
    expect((await api.store.get(res.body.id))?.traceId).toBe(res.body.traceId);
  });

  it("traces the request even when the untrusted caller's traceparent says not sampled", async () => {
    const caller = callerContext("00");
    const res = await postResearch(api, { query: "not sampled" }, { traceparent: caller.traceparent });
    expect(res.status).toBe(202);
    const span = server();
    expect(span.spanContext().traceFlags & TraceFlags.SAMPLED).toBe(TraceFlags.SAMPLED);
    expect(span.spanContext().traceId).toBe(res.body.traceId);
    expect(span.links[0]!.context.traceId).toBe(caller.traceId);
    const carried = await jobTraceparent(api, res.body.id);
    expect(carried).toMatch(new RegExp(`^00-${res.body.traceId}-[0-9a-f]{16}-[0-9a-f]{2}$`));
    expect(parseInt(carried!.slice(-2), 16) & TraceFlags.SAMPLED).toBe(TraceFlags.SAMPLED);
  });

  it("adds no link when there is no incoming context", async () => {
    const res = await postResearch(api, { query: "plain" });
    expect(res.status).toBe(202);
    expect(server().links).toEqual([]);
  });
});

describe("always", () => {
  let api: TestApi;
  beforeAll(async () => {
    api = await startApi({ env: { TRUST_INCOMING_TRACE_CONTEXT: "always" } });
  });
  afterAll(async () => {
    await api?.close();
  });

  it("continues anyone's traceparent", async () => {
    const caller = callerContext();
    const res = await postResearch(api, { query: "continued" }, { traceparent: caller.traceparent });
    expect(res.body.traceId).toBe(caller.traceId);
    expect(server().parentSpanContext?.spanId).toBe(caller.spanId);
    expect(server().links).toEqual([]);
  });
});

describe("keyed with API keys configured", () => {
  let api: TestApi;
  beforeAll(async () => {
    api = await startApi({ env: { API_KEYS: `${KEY} trusted member` } });
  });
  afterAll(async () => {
    await api?.close();
  });

  it("continues the traceparent of a caller with a valid key", async () => {
    const caller = callerContext();
    const res = await postResearch(api, { query: "keyed" }, { traceparent: caller.traceparent, authorization: `Bearer ${KEY}` });
    expect(res.status).toBe(202);
    expect(res.body.traceId).toBe(caller.traceId);
    expect(server().parentSpanContext?.spanId).toBe(caller.spanId);
    expect(await jobTraceparent(api, res.body.id)).toContain(`-${caller.traceId}-`);
  });

  it("does not continue the traceparent of a request with an unknown key", async () => {
    const caller = callerContext();
    await postResearch(
      api,
      { query: "unknown key" },
      { traceparent: caller.traceparent, authorization: "Bearer not-a-configured-key-000000" },
    );
    const span = server();
    expect(span.spanContext().traceId).not.toBe(caller.traceId);
    expect(span.links[0]!.context.traceId).toBe(caller.traceId);
  });
});

describe("never", () => {
  let api: TestApi;
  beforeAll(async () => {
    api = await startApi({ env: { TRUST_INCOMING_TRACE_CONTEXT: "never", API_KEYS: `${KEY} trusted member` } });
  });
  afterAll(async () => {
    await api?.close();
  });

  it("does not continue even a keyed caller's traceparent", async () => {
    const caller = callerContext();
    const res = await postResearch(api, { query: "never" }, { traceparent: caller.traceparent, authorization: `Bearer ${KEY}` });
    expect(res.status).toBe(202);
    expect(res.body.traceId).not.toBe(caller.traceId);
    expect(server().links[0]!.context.traceId).toBe(caller.traceId);
  });

  it("rejects an unknown mode at boot, naming the variable", async () => {
    await expect(startApi({ env: { TRUST_INCOMING_TRACE_CONTEXT: "sometimes" } })).rejects.toThrow(
      /TRUST_INCOMING_TRACE_CONTEXT: must be one of never, keyed, always/,
    );
  });
});
