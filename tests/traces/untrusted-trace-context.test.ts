import { randomBytes } from "node:crypto";
import { SpanKind, TraceFlags } from "@opentelemetry/api";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { useInMemoryTracing, type InMemoryTracing } from "@tracelane/tracing/testing";
import { ATTR_GEN_AI_USAGE_INPUT_TOKENS } from "@tracelane/tracing/attributes";
import { apiClient } from "../support/api-client.js";
import { startInProcessPipeline, type InProcessPipeline } from "../support/in-process-pipeline.js";
import { waitFor } from "@tracelane/testkit";
import { TraceSpans } from "../support/spans.js";

/**
 * Issue 12: `traceparent: 00-<someone's trace id>-…-01` on POST /v1/research added a research's 14
 * spans and its cost to a stranger's trace. The whole pipeline runs here (api, workers, simulator),
 * every span recorded in memory.
 */
let tracing: InMemoryTracing;
beforeAll(() => {
  tracing = useInMemoryTracing();
});
afterAll(async () => {
  await tracing?.shutdown();
});

/** The victim's trace: someone else's id, seen in a list or a log. */
const victim = (flags = "01") => {
  const traceId = randomBytes(16).toString("hex");
  const spanId = randomBytes(8).toString("hex");
  return { traceId, spanId, traceparent: `00-${traceId}-${spanId}-${flags}` };
};
const spansOf = (traceId: string) => tracing.spans().filter((s) => s.spanContext().traceId === traceId);
/** The research's trace once its last stage's CONSUMER span (the last to end) is recorded. */
async function researchTrace(pipeline: InProcessPipeline, traceId: string): Promise<TraceSpans> {
  const last = `process ${pipeline.pipeline.stage(pipeline.pipeline.last).queue}`;
  await waitFor(() => spansOf(traceId).some((s) => s.kind === SpanKind.CONSUMER && s.name === last), {
    what: `the ${last} span of trace ${traceId}`,
    intervalMs: 20,
  });
  return new TraceSpans(spansOf(traceId));
}
const modelCalls = (traceId: string) => spansOf(traceId).filter((s) => s.kind === SpanKind.CLIENT && s.name.startsWith("chat "));

describe("the default (keyed) on an api without keys: a stranger's traceparent is not continued", () => {
  let pipeline: InProcessPipeline;
  beforeAll(async () => {
    pipeline = await startInProcessPipeline({ redisUrl: inject("redisUrl") });
  });
  afterAll(async () => {
    await pipeline?.close();
  });

  it("adds no span and no cost to the stranger's trace; the research's own trace links to it", async () => {
    const other = victim();
    const { status, body } = await apiClient(pipeline.apiUrl).submit(
      { query: "Joining someone else's trace" },
      { traceparent: other.traceparent },
    );
    expect(status).toBe(202);
    expect(body.traceId).not.toBe(other.traceId);
    const view = await pipeline.waitForFinal(body.id);
    expect(view.status).toBe("completed");
    expect(view.totals.costUsd).toBeGreaterThan(0);

    // The research's spans, model calls with their tokens and cost included, are all in its own trace.
    const trace = await researchTrace(pipeline, body.traceId);
    expect(modelCalls(body.traceId).length).toBeGreaterThanOrEqual(pipeline.pipeline.stages.length);
    expect(modelCalls(body.traceId).every((s) => Number(s.attributes[ATTR_GEN_AI_USAGE_INPUT_TOKENS]) > 0)).toBe(true);
    expect(spansOf(other.traceId)).toEqual([]);

    const server = trace.one("POST /v1/research", SpanKind.SERVER);
    expect(server.parentSpanContext).toBeUndefined();
    expect(server.links.map((l) => l.context)).toMatchObject([{ traceId: other.traceId, spanId: other.spanId }]);
  });

  it("still traces the research when the untrusted caller's flags say not sampled", async () => {
    const other = victim("00");
    const { body } = await apiClient(pipeline.apiUrl).submit({ query: "Switching tracing off" }, { traceparent: other.traceparent });
    expect(body.traceId).not.toBe(other.traceId);
    expect((await pipeline.waitForFinal(body.id)).status).toBe("completed");
    const trace = await researchTrace(pipeline, body.traceId);
    expect(trace.spans.every((s) => (s.spanContext().traceFlags & TraceFlags.SAMPLED) === TraceFlags.SAMPLED)).toBe(true);
    expect(modelCalls(body.traceId).length).toBeGreaterThanOrEqual(pipeline.pipeline.stages.length);
    expect(trace.one("POST /v1/research", SpanKind.SERVER).links[0]?.context.traceId).toBe(other.traceId);
  });
});

describe("TRUST_INCOMING_TRACE_CONTEXT=always (what every api did before): the finding", () => {
  let pipeline: InProcessPipeline;
  beforeAll(async () => {
    pipeline = await startInProcessPipeline({ redisUrl: inject("redisUrl"), env: { TRUST_INCOMING_TRACE_CONTEXT: "always" } });
  });
  afterAll(async () => {
    await pipeline?.close();
  });

  it("puts the research's spans and model calls into the caller's trace", async () => {
    const other = victim();
    const { body } = await apiClient(pipeline.apiUrl).submit({ query: "Trusted caller" }, { traceparent: other.traceparent });
    expect(body.traceId).toBe(other.traceId);
    expect((await pipeline.waitForFinal(body.id)).status).toBe("completed");
    const trace = await researchTrace(pipeline, other.traceId);
    expect(modelCalls(other.traceId).length).toBeGreaterThanOrEqual(pipeline.pipeline.stages.length);
    expect(trace.one("POST /v1/research", SpanKind.SERVER).parentSpanContext?.spanId).toBe(other.spanId);
  });
});

describe("keyed with API keys: a caller with a valid key is trusted", () => {
  const key = `trusted-${randomBytes(12).toString("hex")}`;
  let pipeline: InProcessPipeline;
  beforeAll(async () => {
    pipeline = await startInProcessPipeline({ redisUrl: inject("redisUrl"), apiEnv: { API_KEYS: `${key} tracer member` } });
  });
  afterAll(async () => {
    await pipeline?.close();
  });

  it("continues its traceparent through every stage", async () => {
    const mine = victim();
    const { status, body } = await apiClient(pipeline.apiUrl).submit(
      { query: "My own trace" },
      { traceparent: mine.traceparent, authorization: `Bearer ${key}` },
    );
    expect(status).toBe(202);
    expect(body.traceId).toBe(mine.traceId);
    expect((await pipeline.waitForFinal(body.id)).status).toBe("completed");
    await researchTrace(pipeline, mine.traceId);
    expect(modelCalls(mine.traceId).length).toBeGreaterThanOrEqual(pipeline.pipeline.stages.length);
  });
});
