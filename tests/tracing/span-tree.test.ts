import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { SpanKind, SpanStatusCode } from "@opentelemetry/api";
import { claimJobId, QUEUE_NAMES, stageJobId, type Stage } from "@tracelane/queue-contract";
import type { ResearchView } from "@tracelane/research-store";
import { useInMemoryTracing, type InMemoryTracing, type ReadableSpan } from "@tracelane/tracing/testing";
import { apiClient, type ApiClient } from "../support/api-client.js";
import { registryProblem } from "./registry-attributes.js";
import { startInProcessPipeline, type InProcessPipeline } from "../support/in-process-pipeline.js";
import { hrMs, idOf, parentIdOf, spansOfResearch, waitForTrace, type TraceSpans } from "../support/spans.js";
import { ATTR_CLAIM_INDEX, ATTR_CLAIM_VERDICT, ATTR_RESEARCH_ID, ATTR_STAGE } from "@tracelane/pipeline";
import {
  ATTR_GEN_AI_AGENT_ID,
  ATTR_GEN_AI_AGENT_NAME,
  ATTR_GEN_AI_OPERATION_NAME,
  ATTR_GEN_AI_PROVIDER_NAME,
  ATTR_GEN_AI_REQUEST_MODEL,
  ATTR_GEN_AI_RESPONSE_FINISH_REASONS,
  ATTR_GEN_AI_RESPONSE_ID,
  ATTR_GEN_AI_RESPONSE_MODEL,
  ATTR_GEN_AI_TOOL_CALL_ARGUMENTS,
  ATTR_GEN_AI_TOOL_CALL_ID,
  ATTR_GEN_AI_TOOL_CALL_RESULT,
  ATTR_GEN_AI_TOOL_NAME,
  ATTR_GEN_AI_TOOL_TYPE,
  ATTR_GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS,
  ATTR_USAGE_COST_USD,
  ATTR_GEN_AI_USAGE_INPUT_TOKENS,
  ATTR_GEN_AI_USAGE_OUTPUT_TOKENS,
  ATTR_HTTP_REQUEST_METHOD,
  ATTR_HTTP_REQUEST_RESEND_COUNT,
  ATTR_HTTP_RESPONSE_STATUS_CODE,
  ATTR_HTTP_ROUTE,
  ATTR_JOB_ATTEMPT,
  ATTR_MESSAGING_DESTINATION_NAME,
  ATTR_MESSAGING_MESSAGE_ID,
  ATTR_MESSAGING_OPERATION_TYPE,
  ATTR_QUEUE_WAIT_MS,
  ATTR_MESSAGING_SYSTEM,
  ATTR_SERVER_ADDRESS,
  ATTR_SERVER_PORT,
  ATTR_URL_FULL,
} from "@tracelane/tracing/attributes";

// Published list prices, USD per 1M tokens (input, cached input, output), written out by hand so the test
// checks the cost the worker reports rather than re-using its price table.
const STAGE_MODELS: Array<{ stage: Stage; model: string; provider: string; price: [number, number, number] }> = [
  { stage: "analysis", model: "gpt-4.1", provider: "openai", price: [2.0, 0.5, 8.0] },
  { stage: "factcheck", model: "gemini-2.5-flash", provider: "gcp.gemini", price: [0.3, 0.03, 2.5] },
  { stage: "synthesis", model: "deepseek-v3.2", provider: "deepseek", price: [0.28, 0.028, 0.42] },
];
const costOf = (price: [number, number, number], u: { inputTokens: number; outputTokens: number; cachedInputTokens?: number }) => {
  const cached = u.cachedInputTokens ?? 0;
  return ((u.inputTokens - cached) * price[0] + cached * price[1] + u.outputTokens * price[2]) / 1e6;
};

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
  expect(view.stages.factcheck.claims?.length).toBeGreaterThanOrEqual(4);
  const trace = await waitForTrace(tracing, traceId, spansOfResearch(view));
  return { id, traceId, view, trace };
}

interface Hop {
  publish: ReadableSpan;
  process: ReadableSpan;
}
/** The fact-check's own job runs twice: it fans out, parks until its claims are done, and comes back to fan in. */
type Hops = Record<Stage, Hop> & { fanIn: ReadableSpan; claims: Hop[] };

/** The PRODUCER -> CONSUMER chain of every stage and claim, checked link by link; returns the spans. */
function expectQueueHops(trace: TraceSpans, root: ReadableSpan, id: string, view: ResearchView): Hops {
  const byMessage = (name: string, kind: SpanKind, jobId: string) =>
    trace.all(name, kind).filter((s) => s.attributes[ATTR_MESSAGING_MESSAGE_ID] === jobId);
  const hop = (queue: string, jobId: string, parent: ReadableSpan, visits = 1) => {
    const [publish, ...more] = byMessage(`publish ${queue}`, SpanKind.PRODUCER, jobId);
    expect(more, `one publish of ${jobId}`).toEqual([]);
    expect(parentIdOf(publish!), `publish ${jobId} is a child of ${parent.name}`).toBe(idOf(parent));
    const processes = byMessage(`process ${queue}`, SpanKind.CONSUMER, jobId).sort((a, b) => hrMs(a.startTime) - hrMs(b.startTime));
    expect(processes, `${visits} process span(s) of ${jobId}`).toHaveLength(visits);
    for (const process of processes) {
      expect(parentIdOf(process), `process ${jobId} is a child of its publish`).toBe(idOf(publish!));
      // The consumer's parent came out of the job data, not from the local context.
      expect(process.parentSpanContext?.isRemote).toBe(true);
      expect(hrMs(process.startTime)).toBeGreaterThanOrEqual(hrMs(publish!.startTime));
    }
    return { publish: publish!, process: processes[0]!, last: processes.at(-1)! };
  };
  const analysis = hop(QUEUE_NAMES.analysis, stageJobId(id, "analysis"), root);
  const factcheck = hop(QUEUE_NAMES.factcheck, stageJobId(id, "factcheck"), analysis.process, 2);
  // Every claim job is published from the fact-check's fan-out, under its invoke_agent span.
  const [fanOut, ...moreAgents] = trace.childrenOf(factcheck.process);
  expect(moreAgents).toEqual([]);
  expect(fanOut!.name).toBe("invoke_agent factcheck");
  const claims = (view.stages.factcheck.claims ?? []).map((c) => hop(QUEUE_NAMES.factcheck, claimJobId(id, "factcheck", c.index), fanOut!));
  expect(trace.childrenOf(fanOut!).map((s) => s.attributes[ATTR_MESSAGING_MESSAGE_ID])).toEqual(
    claims.map((_, i) => claimJobId(id, "factcheck", i)),
  );
  const synthesis = hop(QUEUE_NAMES.synthesis, stageJobId(id, "synthesis"), factcheck.last);
  return { analysis, factcheck, synthesis, fanIn: factcheck.last, claims };
}

/** A chat span and its one HTTP attempt to the simulator. */
function expectChat(trace: TraceSpans, chat: ReadableSpan, model: string, provider: string) {
  expect(chat.kind).toBe(SpanKind.CLIENT);
  expect(chat.name).toBe(`chat ${model}`);
  expect(chat.attributes).toMatchObject({
    [ATTR_GEN_AI_OPERATION_NAME]: "chat",
    [ATTR_GEN_AI_PROVIDER_NAME]: provider,
    [ATTR_GEN_AI_REQUEST_MODEL]: model,
    [ATTR_GEN_AI_RESPONSE_MODEL]: model,
    [ATTR_SERVER_ADDRESS]: "127.0.0.1",
    [ATTR_SERVER_PORT]: pipeline.simulator.port,
  });
  expect(chat.attributes[ATTR_GEN_AI_RESPONSE_ID]).toMatch(/^chatcmpl-[A-Za-z0-9]+$/);
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
    [ATTR_HTTP_REQUEST_RESEND_COUNT]: 0,
    [ATTR_HTTP_RESPONSE_STATUS_CODE]: 200,
  });
  expect(trace.childrenOf(attempt)).toEqual([]);
}

const usageOf = (chat: ReadableSpan) => ({
  inputTokens: chat.attributes[ATTR_GEN_AI_USAGE_INPUT_TOKENS] as number,
  outputTokens: chat.attributes[ATTR_GEN_AI_USAGE_OUTPUT_TOKENS] as number,
  cachedInputTokens: (chat.attributes[ATTR_GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] as number | undefined) ?? 0,
});

describe("one trace per research request", () => {
  it("links the HTTP request, every queue hop, the fan-out per claim, every model call, tool run and HTTP attempt into one trace", async () => {
    const { id, traceId, view, trace } = await runResearch("How do heat pumps perform below -20 C?");

    expect(traceId).toMatch(/^[0-9a-f]{32}$/);
    expect(view.traceId).toBe(traceId);
    expect(trace.spans, trace.describe()).toHaveLength(spansOfResearch(view));
    // One root, and every other span's parent is in the trace.
    const ids = new Set(trace.spans.map(idOf));
    expect(trace.spans.filter((s) => !s.parentSpanContext || !ids.has(s.parentSpanContext.spanId))).toHaveLength(1);

    const server = trace.one("POST /v1/research", SpanKind.SERVER);
    expect(server.parentSpanContext).toBeUndefined();
    expect(server.attributes).toMatchObject({
      [ATTR_HTTP_REQUEST_METHOD]: "POST",
      [ATTR_HTTP_ROUTE]: "/v1/research",
      "url.path": "/v1/research",
      [ATTR_HTTP_RESPONSE_STATUS_CODE]: 202,
    });
    expect(trace.childrenOf(server).map((s) => s.name)).toEqual(["publish research-analysis"]);

    const hops = expectQueueHops(trace, server, id, view);
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
        [ATTR_JOB_ATTEMPT]: 1,
        [ATTR_RESEARCH_ID]: id,
        [ATTR_STAGE]: stage,
      });
      // The wait runs from the job's enqueuedAt (set inside the publish span) to the start of this span; the
      // stage record's wait ends earlier, when BullMQ handed the job over (ms clocks: 1 ms of slack).
      const waitMs = process.attributes[ATTR_QUEUE_WAIT_MS] as number;
      expect(waitMs).toBeGreaterThanOrEqual(view.stages[stage].queueWaitMs!);
      expect(waitMs).toBeLessThanOrEqual(hrMs(process.startTime) - hrMs(publish.startTime) + 1);
      expect(process.status.code).toBe(SpanStatusCode.OK);
      if (stage === "factcheck") continue;

      // Under the CONSUMER span: the stage's agent run (its model call), then the hand-off to the next stage.
      const next = STAGE_MODELS[i + 1];
      expect(trace.childrenOf(process).map((s) => s.name)).toEqual([
        `invoke_agent ${stage}`,
        ...(next ? [`publish ${QUEUE_NAMES[next.stage]}`] : []),
      ]);
      const [agent] = trace.childrenOf(process);
      expect(agent!.attributes).toMatchObject({
        [ATTR_GEN_AI_OPERATION_NAME]: "invoke_agent",
        [ATTR_GEN_AI_AGENT_NAME]: stage,
        [ATTR_GEN_AI_AGENT_ID]: jobId,
      });
      const [chat, ...others] = trace.childrenOf(agent!);
      expect(others).toEqual([]);
      expectChat(trace, chat!, model, provider);
      const usage = view.stages[stage].usage!;
      expect(usage.inputTokens).toBeGreaterThan(0);
      expect(usage.outputTokens).toBeGreaterThan(0);
      expect(usageOf(chat!)).toEqual({ cachedInputTokens: 0, ...usage });
      expect(chat!.attributes).toMatchObject({
        [ATTR_GEN_AI_RESPONSE_FINISH_REASONS]: ["stop"],
        [ATTR_STAGE]: stage,
        [ATTR_RESEARCH_ID]: id,
      });
      expect(chat!.attributes[ATTR_USAGE_COST_USD]).toBeCloseTo(costOf(price, usage), 12);
    }

    // The fan-out: one claim job per claim, each checked by a tool-using agent run.
    const fc = STAGE_MODELS[1]!;
    const claims = view.stages.factcheck.claims!;
    let claimsNano = 0;
    for (const [i, claim] of claims.entries()) {
      const { process } = hops.claims[i]!;
      expect(claim.status).toBe("checked");
      expect(process.attributes).toMatchObject({
        [ATTR_MESSAGING_MESSAGE_ID]: claimJobId(id, "factcheck", i),
        [ATTR_JOB_ATTEMPT]: 1,
        [ATTR_CLAIM_INDEX]: i,
        [ATTR_CLAIM_VERDICT]: claim.verdict,
      });
      const [agent, ...more] = trace.childrenOf(process);
      expect(more).toEqual([]);
      expect(agent!.name).toBe("invoke_agent factcheck");
      // Model turns and tool runs alternate: chat, its tools (in parallel), chat... ending with the verdict.
      const steps = trace.childrenOf(agent!);
      const chats = steps.filter((s) => s.name.startsWith("chat "));
      const tools = steps.filter((s) => s.name.startsWith("execute_tool "));
      expect(chats).toHaveLength(claim.modelCalls!);
      expect(tools).toHaveLength(claim.toolCalls!);
      expect(tools.length).toBeGreaterThanOrEqual(1);
      expect(steps.at(-1)!.name).toBe(`chat ${fc.model}`);
      for (const chat of chats) expectChat(trace, chat, fc.model, fc.provider);
      for (const tool of tools) {
        expect(tool.kind).toBe(SpanKind.INTERNAL);
        expect(tool.name).toBe("execute_tool search_evidence");
        expect(tool.attributes).toMatchObject({
          [ATTR_GEN_AI_OPERATION_NAME]: "execute_tool",
          [ATTR_GEN_AI_TOOL_NAME]: "search_evidence",
          [ATTR_GEN_AI_TOOL_TYPE]: "function",
        });
        expect(tool.attributes[ATTR_GEN_AI_TOOL_CALL_ID]).toMatch(/\S/);
        // No content capture here: the model's arguments and the search results stay out of the trace.
        expect(tool.attributes[ATTR_GEN_AI_TOOL_CALL_ARGUMENTS]).toBeUndefined();
        expect(tool.attributes[ATTR_GEN_AI_TOOL_CALL_RESULT]).toBeUndefined();
        // Each tool run follows the chat that asked for it and ends before the next chat starts (span starts
        // are whole milliseconds: 1 ms of slack).
        const before = chats.filter((c) => hrMs(c.endTime) <= hrMs(tool.startTime) + 1);
        const after = chats.filter((c) => hrMs(c.startTime) + 1 >= hrMs(tool.endTime));
        expect(before.length + after.length).toBe(chats.length);
        expect(before.length).toBeGreaterThanOrEqual(1);
        const [request, ...rest] = trace.childrenOf(tool);
        expect(rest).toEqual([]);
        expect(request!.attributes).toMatchObject({ [ATTR_HTTP_REQUEST_METHOD]: "POST", [ATTR_HTTP_RESPONSE_STATUS_CODE]: 200 });
      }
      // The claim's record is the sum of its chat spans, priced with cached input at the cached rate.
      const sum = chats.map(usageOf).reduce((a, b) => ({
        inputTokens: a.inputTokens + b.inputTokens,
        outputTokens: a.outputTokens + b.outputTokens,
        cachedInputTokens: a.cachedInputTokens + b.cachedInputTokens,
      }));
      expect({ cachedInputTokens: 0, ...claim.usage }).toEqual(sum);
      const spanCost = chats.reduce((n, c) => n + (c.attributes[ATTR_USAGE_COST_USD] as number), 0);
      expect(claim.costUsd).toBeCloseTo(spanCost, 9);
      expect(claim.costUsd).toBeCloseTo(costOf(fc.price, sum), 9);
      claimsNano += Math.round(claim.costUsd! * 1e9);
    }

    // The fan-in: back on the fact-check's own job, an agent run linked to every claim's CONSUMER span.
    expect(trace.childrenOf(hops.fanIn).map((s) => s.name)).toEqual(["invoke_agent factcheck", "publish research-synthesis"]);
    const [fanIn] = trace.childrenOf(hops.fanIn);
    expect(fanIn!.links.map((l) => l.context.spanId).sort()).toEqual(hops.claims.map((c) => idOf(c.process)).sort());
    expect(hrMs(fanIn!.startTime)).toBeGreaterThanOrEqual(Math.max(...hops.claims.map((c) => hrMs(c.process.endTime))));
    // The fact-check's row is exactly its claims', and the research's total every call's.
    expect(Math.round(view.stages.factcheck.costUsd! * 1e9)).toBe(claimsNano);
    const allChats = trace.spans.filter((s) => s.name.startsWith("chat "));
    expect(allChats).toHaveLength(2 + claims.reduce((n, c) => n + c.modelCalls!, 0));
    expect(view.totals.costUsd).toBeCloseTo(
      allChats.reduce((n, c) => n + (c.attributes[ATTR_USAGE_COST_USD] as number), 0),
      9,
    );
    expect(view.totals.inputTokens).toBe(allChats.reduce((n, c) => n + usageOf(c).inputTokens, 0));

    // Every attribute of every span is the registry's, with the registry's type, or ours under tracelane.*.
    const problems = trace.spans.flatMap((span) =>
      Object.entries(span.attributes).flatMap(([key, value]) => {
        const problem = registryProblem(key, value);
        return problem ? [`${span.name}: ${problem}`] : [];
      }),
    );
    expect(problems).toEqual([]);
    expect(trace.spans.reduce((n, s) => n + Object.keys(s.attributes).length, 0)).toBeGreaterThan(300);
    // Every PRODUCER and CONSUMER span names its system, operation and destination.
    for (const span of trace.spans.filter((s) => s.kind === SpanKind.PRODUCER || s.kind === SpanKind.CONSUMER)) {
      expect(Object.keys(span.attributes)).toEqual(
        expect.arrayContaining([ATTR_MESSAGING_SYSTEM, "messaging.operation.name", ATTR_MESSAGING_DESTINATION_NAME]),
      );
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
    expect(trace.spans, trace.describe()).toHaveLength(spansOfResearch(view));

    const server = trace.one("POST /v1/research", SpanKind.SERVER);
    expect(server.parentSpanContext).toMatchObject({ traceId: callerTraceId, spanId: callerSpanId, isRemote: true });
    const hops = expectQueueHops(trace, server, id, view);

    // What the last stage received in its job data: the caller's tracestate, next to its own parent.
    const job = await pipeline.queues.queue("synthesis").getJob(stageJobId(id, "synthesis"));
    expect(job?.data.trace).toEqual({
      traceparent: `00-${callerTraceId}-${idOf(hops.synthesis.publish)}-01`,
      tracestate,
    });
    expect(hops.synthesis.process.parentSpanContext?.traceState?.serialize()).toBe(tracestate);
    // And every claim: the fan-out passes the caller's tracestate on unchanged too, as each claim's CONSUMER
    // received it (a claim's job leaves the queue once it completes).
    for (const claim of hops.claims) {
      expect(claim.process.parentSpanContext?.spanId).toBe(idOf(claim.publish));
      expect(claim.process.parentSpanContext?.traceState?.serialize()).toBe(tracestate);
    }
  });

  it.each([
    ["garbage", "not-a-traceparent"],
    ["an all-zero trace id", "00-00000000000000000000000000000000-00f067aa0ba902b7-01"],
    ["an unknown version ff", "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"],
  ])("starts a fresh trace and still completes the research when traceparent is %s", async (_what, traceparent) => {
    const { id, traceId, view, trace } = await runResearch("What is the lifetime of offshore wind turbines?", {
      traceparent,
      tracestate: "caller=ignored-with-its-traceparent",
    });

    expect(traceId).toMatch(/^[0-9a-f]{32}$/);
    expect(traceId).not.toBe("0".repeat(32));
    expect(traceparent).not.toContain(traceId);
    expect(trace.spans, trace.describe()).toHaveLength(spansOfResearch(view));
    const server = trace.one("POST /v1/research", SpanKind.SERVER);
    expect(server.parentSpanContext).toBeUndefined();
    expect(server.spanContext().traceState).toBeUndefined();
    expectQueueHops(trace, server, id, view);
  });
});
