import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { SpanKind, SpanStatusCode } from "@opentelemetry/api";
import { QUEUE_NAMES, stageJobId, type Stage } from "@tracelane/queue-contract";
import { useInMemoryTracing, type InMemoryTracing, type ReadableSpan } from "@tracelane/tracing/testing";
import { apiClient, type ApiClient } from "../support/api-client.js";
import { startInProcessPipeline, type InProcessPipeline } from "../support/in-process-pipeline.js";
import { hrMs, idOf, parentIdOf, waitForTrace, type TraceSpans } from "../support/spans.js";
import { ATTR_RESEARCH_ID, ATTR_STAGE } from "@tracelane/pipeline";
import {
  ATTR_GEN_AI_OPERATION_NAME,
  ATTR_GEN_AI_PROVIDER_NAME,
  ATTR_GEN_AI_REQUEST_MODEL,
  ATTR_GEN_AI_RESPONSE_FINISH_REASONS,
  ATTR_GEN_AI_RESPONSE_ID,
  ATTR_GEN_AI_RESPONSE_MODEL,
  ATTR_GEN_AI_USAGE_COST,
  ATTR_GEN_AI_USAGE_INPUT_TOKENS,
  ATTR_GEN_AI_USAGE_OUTPUT_TOKENS,
  ATTR_HTTP_REQUEST_METHOD,
  ATTR_HTTP_REQUEST_RESEND_COUNT,
  ATTR_HTTP_RESPONSE_STATUS_CODE,
  ATTR_HTTP_ROUTE,
  ATTR_MESSAGING_BULLMQ_JOB_ATTEMPT,
  ATTR_MESSAGING_DESTINATION_NAME,
  ATTR_MESSAGING_MESSAGE_ID,
  ATTR_MESSAGING_OPERATION_TYPE,
  ATTR_MESSAGING_QUEUE_WAIT_MS,
  ATTR_MESSAGING_SYSTEM,
  ATTR_SERVER_ADDRESS,
  ATTR_SERVER_PORT,
  ATTR_URL_FULL,
} from "@tracelane/tracing/attributes";

// Published list prices, USD per 1M tokens (input, output), written out by hand so the test checks
// the cost the worker reports rather than re-using its price table.
const STAGE_MODELS: Array<{ stage: Stage; model: string; provider: string; price: [number, number] }> = [
  { stage: "analysis", model: "gpt-4.1", provider: "openai", price: [2.0, 8.0] },
  { stage: "factcheck", model: "gemini-2.5-flash", provider: "gcp.gemini", price: [0.3, 2.5] },
  { stage: "synthesis", model: "deepseek-v3.2", provider: "deepseek", price: [0.28, 0.42] },
];

/** 1 SERVER + per stage: PRODUCER, CONSUMER, chat CLIENT, HTTP attempt CLIENT. */
const SPANS_PER_RESEARCH = 1 + 3 * 4;

let tracing: InMemoryTracing;
let pipeline: InProcessPipeline;
let api: ApiClient;

beforeAll(async () => {
  // First: every span the pipeline starts from here on goes to memory.
  tracing = useInMemoryTracing();
  // A caller's traceparent is continued here (who is trusted to: tests/traces/untrusted-trace-context.test.ts).
  pipeline = await startInProcessPipeline({ redisUrl: inject("redisUrl"), env: { TRUST_INCOMING_TRACE_CONTEXT: "always" } });
  api = apiClient(pipeline.apiUrl);
});

afterAll(async () => {
  await pipeline?.close();
  await tracing?.shutdown();
});

/** Submit, wait for the research to complete, and return its trace once every span has ended. */
async function runResearch(query: string, headers: Record<string, string> = {}) {
  const submitted = await api.submit({ query }, headers);
  expect(submitted.status).toBe(202);
  const { id, traceId } = submitted.body;
  const view = await pipeline.waitForFinal(id);
  expect(view.status, JSON.stringify(view.error)).toBe("completed");
  const trace = await waitForTrace(tracing, traceId, SPANS_PER_RESEARCH);
  return { id, traceId, view, trace };
}

/** The PRODUCER -> CONSUMER chain of every stage, checked link by link; returns the spans by stage. */
function expectQueueHops(trace: TraceSpans, root: ReadableSpan) {
  const hops: Partial<Record<Stage, { publish: ReadableSpan; process: ReadableSpan }>> = {};
  let parent = root;
  for (const { stage } of STAGE_MODELS) {
    const queue = QUEUE_NAMES[stage];
    const publish = trace.one(`publish ${queue}`, SpanKind.PRODUCER);
    const process = trace.one(`process ${queue}`, SpanKind.CONSUMER);
    expect(parentIdOf(publish), `publish ${queue} is a child of ${parent.name}`).toBe(idOf(parent));
    expect(parentIdOf(process), `process ${queue} is a child of publish ${queue}`).toBe(idOf(publish));
    // The consumer's parent came out of the job data, not from the local context.
    expect(process.parentSpanContext?.isRemote).toBe(true);
    expect(hrMs(process.startTime)).toBeGreaterThanOrEqual(hrMs(publish.startTime));
    hops[stage] = { publish, process };
    parent = process;
  }
  return hops as Record<Stage, { publish: ReadableSpan; process: ReadableSpan }>;
}

describe("one trace per research request", () => {
  it("links the HTTP request, every queue hop, every model call and its HTTP attempt into one trace", async () => {
    const { id, traceId, view, trace } = await runResearch("How do heat pumps perform below -20 C?");

    expect(traceId).toMatch(/^[0-9a-f]{32}$/);
    expect(view.traceId).toBe(traceId);
    expect(trace.spans, trace.describe()).toHaveLength(SPANS_PER_RESEARCH);

    const server = trace.one("POST /v1/research", SpanKind.SERVER);
    expect(server.parentSpanContext).toBeUndefined();
    expect(server.attributes).toMatchObject({
      [ATTR_HTTP_REQUEST_METHOD]: "POST",
      [ATTR_HTTP_ROUTE]: "/v1/research",
      "url.path": "/v1/research",
      [ATTR_HTTP_RESPONSE_STATUS_CODE]: 202,
    });
    expect(trace.childrenOf(server).map((s) => s.name)).toEqual(["publish research-analysis"]);

    const hops = expectQueueHops(trace, server);
    for (const [i, { stage, model, provider, price }] of STAGE_MODELS.entries()) {
      const { publish, process } = hops[stage];
      const queue = QUEUE_NAMES[stage];
      const jobId = stageJobId(id, stage);

      expect(publish.attributes).toMatchObject({
        [ATTR_MESSAGING_SYSTEM]: "bullmq",
        [ATTR_MESSAGING_OPERATION_TYPE]: "send",
        [ATTR_MESSAGING_DESTINATION_NAME]: queue,
        [ATTR_MESSAGING_MESSAGE_ID]: jobId,
      });
      expect(process.attributes).toMatchObject({
        [ATTR_MESSAGING_SYSTEM]: "bullmq",
        [ATTR_MESSAGING_OPERATION_TYPE]: "process",
        [ATTR_MESSAGING_DESTINATION_NAME]: queue,
        [ATTR_MESSAGING_MESSAGE_ID]: jobId,
        [ATTR_MESSAGING_BULLMQ_JOB_ATTEMPT]: 1,
        [ATTR_RESEARCH_ID]: id,
        [ATTR_STAGE]: stage,
      });
      // The wait runs from the job's enqueuedAt (set inside the publish span) to the start of this span; the
      // stage record's wait ends earlier, when BullMQ handed the job over (ms clocks: 1 ms of slack).
      const waitMs = process.attributes[ATTR_MESSAGING_QUEUE_WAIT_MS] as number;
      expect(waitMs).toBeGreaterThanOrEqual(view.stages[stage].queueWaitMs!);
      expect(waitMs).toBeLessThanOrEqual(hrMs(process.startTime) - hrMs(publish.startTime) + 1);
      expect(process.status.code).toBe(SpanStatusCode.OK);

      // Under the CONSUMER span: the model call, then the hand-off to the next stage.
      const next = STAGE_MODELS[i + 1];
      expect(trace.childrenOf(process).map((s) => s.name)).toEqual([
        `chat ${model}`,
        ...(next ? [`publish ${QUEUE_NAMES[next.stage]}`] : []),
      ]);

      const chat = trace.one(`chat ${model}`, SpanKind.CLIENT);
      expect(parentIdOf(chat)).toBe(idOf(process));
      const usage = view.stages[stage].usage!;
      expect(usage.inputTokens).toBeGreaterThan(0);
      expect(usage.outputTokens).toBeGreaterThan(0);
      expect(chat.attributes).toMatchObject({
        [ATTR_GEN_AI_OPERATION_NAME]: "chat",
        [ATTR_GEN_AI_PROVIDER_NAME]: provider,
        [ATTR_GEN_AI_REQUEST_MODEL]: model,
        [ATTR_GEN_AI_RESPONSE_MODEL]: model,
        [ATTR_GEN_AI_RESPONSE_FINISH_REASONS]: ["stop"],
        [ATTR_GEN_AI_USAGE_INPUT_TOKENS]: usage.inputTokens,
        [ATTR_GEN_AI_USAGE_OUTPUT_TOKENS]: usage.outputTokens,
        [ATTR_SERVER_ADDRESS]: "127.0.0.1",
        [ATTR_SERVER_PORT]: pipeline.simulator.port,
        [ATTR_STAGE]: stage,
        [ATTR_RESEARCH_ID]: id,
      });
      expect(chat.attributes[ATTR_GEN_AI_RESPONSE_ID]).toMatch(/^chatcmpl-[A-Za-z0-9]+$/);
      const [inPer1M, outPer1M] = price;
      expect(chat.attributes[ATTR_GEN_AI_USAGE_COST]).toBeCloseTo((usage.inputTokens * inPer1M + usage.outputTokens * outPer1M) / 1e6, 12);
      expect(chat.status.code).toBe(SpanStatusCode.OK);
      expect(chat.events).toEqual([]);

      const attempts = trace.childrenOf(chat);
      expect(attempts).toHaveLength(1);
      const [attempt] = attempts as [ReadableSpan];
      expect(attempt.kind).toBe(SpanKind.CLIENT);
      expect(attempt.name).toBe("POST");
      expect(attempt.attributes).toMatchObject({
        [ATTR_HTTP_REQUEST_METHOD]: "POST",
        [ATTR_URL_FULL]: `${pipeline.simulator.baseURL}/chat/completions`,
        [ATTR_SERVER_ADDRESS]: "127.0.0.1",
        [ATTR_SERVER_PORT]: pipeline.simulator.port,
        [ATTR_HTTP_REQUEST_RESEND_COUNT]: 0,
        [ATTR_HTTP_RESPONSE_STATUS_CODE]: 200,
      });
      expect(trace.childrenOf(attempt)).toEqual([]);
    }
  });

  it("continues the caller's trace and carries its tracestate unchanged to the last stage", async () => {
    const callerTraceId = randomBytes(16).toString("hex");
    const callerSpanId = randomBytes(8).toString("hex");
    const tracestate = "caller=t61rcWkgMzE,vendor2=opaque-value";

    const { id, traceId, view, trace } = await runResearch("Is green hydrogen cheaper than grey hydrogen yet?", {
      traceparent: `00-${callerTraceId}-${callerSpanId}-01`,
      tracestate,
    });

    expect(traceId).toBe(callerTraceId);
    expect(view.traceId).toBe(callerTraceId);
    expect(trace.spans, trace.describe()).toHaveLength(SPANS_PER_RESEARCH);

    const server = trace.one("POST /v1/research", SpanKind.SERVER);
    expect(server.parentSpanContext).toMatchObject({ traceId: callerTraceId, spanId: callerSpanId, isRemote: true });
    const hops = expectQueueHops(trace, server);

    // What the last stage received in its job data: the caller's tracestate, next to its own parent.
    const job = await pipeline.queues.queue("synthesis").getJob(stageJobId(id, "synthesis"));
    expect(job?.data.trace).toEqual({
      traceparent: `00-${callerTraceId}-${idOf(hops.synthesis.publish)}-01`,
      tracestate,
    });
    expect(hops.synthesis.process.parentSpanContext?.traceState?.serialize()).toBe(tracestate);
  });

  it.each([
    ["garbage", "not-a-traceparent"],
    ["an all-zero trace id", "00-00000000000000000000000000000000-00f067aa0ba902b7-01"],
    ["an unknown version ff", "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"],
  ])("starts a fresh trace and still completes the research when traceparent is %s", async (_what, traceparent) => {
    const { traceId, trace } = await runResearch("What is the lifetime of offshore wind turbines?", {
      traceparent,
      tracestate: "caller=ignored-with-its-traceparent",
    });

    expect(traceId).toMatch(/^[0-9a-f]{32}$/);
    expect(traceId).not.toBe("0".repeat(32));
    expect(traceparent).not.toContain(traceId);
    expect(trace.spans, trace.describe()).toHaveLength(SPANS_PER_RESEARCH);
    const server = trace.one("POST /v1/research", SpanKind.SERVER);
    expect(server.parentSpanContext).toBeUndefined();
    expect(server.spanContext().traceState).toBeUndefined();
    expectQueueHops(trace, server);
  });
});
