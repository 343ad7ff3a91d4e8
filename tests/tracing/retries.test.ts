import { describe, expect, it } from "vitest";
import { SpanKind, SpanStatusCode } from "@opentelemetry/api";
import { stageJobId } from "@tracelane/queue-contract";
import type { ReadableSpan } from "@tracelane/tracing/testing";
import { useTracedPipeline } from "../support/traced-pipeline-fixture.js";
import { hrMs, idOf, parentIdOf, spansOfResearch, waitForTrace } from "../support/spans.js";
import {
  ATTR_ERROR_TYPE,
  ATTR_GEN_AI_RESPONSE_ID,
  ATTR_HTTP_REQUEST_RESEND_COUNT,
  ATTR_HTTP_RESPONSE_STATUS_CODE,
  ATTR_JOB_ATTEMPT,
  ATTR_MESSAGING_MESSAGE_ID,
  ATTR_RETRY_DELAY_MS,
} from "@tracelane/tracing/attributes";

const ctx = useTracedPipeline({
  stageEnv: {
    // Analysis retries a failed HTTP attempt itself, inside its model call...
    analysis: { LLM_MAX_RETRIES: "1", LLM_RETRY_BASE_MS: "20" },
    // ...synthesis does not, so a failed attempt fails the job and BullMQ retries it.
    synthesis: { LLM_MAX_RETRIES: "0" },
  },
});

/** Run a research to completion; its trace must hold a plain research's spans and `extraSpans` more. */
async function runResearch(query: string, extraSpans: number) {
  const submitted = await ctx.api.submit({ query });
  expect(submitted.status).toBe(202);
  const { id, traceId } = submitted.body;
  const view = await ctx.pipeline.waitForFinal(id);
  expect(view.status, JSON.stringify(view.error)).toBe("completed");
  const expectedSpans = spansOfResearch(view) + extraSpans;
  const trace = await waitForTrace(ctx.tracing, traceId, expectedSpans);
  expect(trace.spans, trace.describe()).toHaveLength(expectedSpans);
  return { id, view, trace };
}

const byStart = (a: ReadableSpan, b: ReadableSpan) => hrMs(a.startTime) - hrMs(b.startTime);

describe("retries in the trace", () => {
  it("shows a job retried by BullMQ as two CONSUMER spans, attempts 1 and 2, under the one PRODUCER span", async () => {
    // A plain research's spans + a second CONSUMER, invoke_agent, chat and HTTP attempt for synthesis.
    const { id, view, trace } = await runResearch(
      "Which battery chemistries suit home storage? [[sim:fault=500;model=deepseek-v3.2;times=1]]",
      4,
    );
    expect(view.stages.synthesis.attempts).toBe(2);

    const publish = trace.one("publish research-synthesis", SpanKind.PRODUCER);
    const consumers = trace.all("process research-synthesis", SpanKind.CONSUMER).sort(byStart);
    expect(consumers).toHaveLength(2);
    const [first, second] = consumers as [ReadableSpan, ReadableSpan];
    for (const c of consumers) {
      expect(parentIdOf(c)).toBe(idOf(publish));
      expect(c.attributes[ATTR_MESSAGING_MESSAGE_ID]).toBe(stageJobId(id, "synthesis"));
    }
    expect(first.attributes[ATTR_JOB_ATTEMPT]).toBe(1);
    expect(second.attributes[ATTR_JOB_ATTEMPT]).toBe(2);
    expect(hrMs(second.startTime)).toBeGreaterThanOrEqual(hrMs(first.endTime));

    // The failed attempt: recorded once on the CONSUMER span, and on the model call it came from.
    expect(first.status.code).toBe(SpanStatusCode.ERROR);
    expect(first.attributes[ATTR_ERROR_TYPE]).toBe("ModelCallError");
    expect(first.events.map((e) => e.name)).toEqual(["exception"]);
    const [failedAgent, ...restOfFirst] = trace.childrenOf(first);
    expect(restOfFirst).toEqual([]); // nothing else ran in the failed attempt
    expect(failedAgent?.name).toBe("invoke_agent synthesis");
    const [failedChat, ...otherCalls] = trace.childrenOf(failedAgent!);
    expect(otherCalls).toEqual([]);
    expect(failedChat?.name).toBe("chat deepseek-v3.2");
    expect(failedChat?.status.code).toBe(SpanStatusCode.ERROR);
    const failedAttempts = trace.childrenOf(failedChat!);
    expect(failedAttempts).toHaveLength(1);
    expect(failedAttempts[0]!.attributes).toMatchObject({
      [ATTR_HTTP_RESPONSE_STATUS_CODE]: 500,
      [ATTR_HTTP_REQUEST_RESEND_COUNT]: 0,
      [ATTR_ERROR_TYPE]: "500",
    });

    // The successful attempt makes the call again and completes the research (synthesis is the last stage).
    expect(second.status.code).toBe(SpanStatusCode.OK);
    expect(trace.childrenOf(second).map((s) => s.name)).toEqual(["invoke_agent synthesis"]);
    const [okAgent] = trace.childrenOf(second);
    expect(trace.childrenOf(okAgent!).map((s) => s.name)).toEqual(["chat deepseek-v3.2"]);
    const [okChat] = trace.childrenOf(okAgent!);
    expect(okChat!.status.code).toBe(SpanStatusCode.OK);
    expect(trace.childrenOf(okChat!).map((s) => s.attributes[ATTR_HTTP_RESPONSE_STATUS_CODE])).toEqual([200]);
    expect(view.result?.finalReport).toBeTruthy();
    // The stages before it ran once: one CONSUMER span each for analysis, two visits for the fact-check's own job.
    expect(trace.all("process research-analysis", SpanKind.CONSUMER)).toHaveLength(1);
    expect(
      trace
        .all("process research-factcheck", SpanKind.CONSUMER)
        .filter((s) => s.attributes[ATTR_MESSAGING_MESSAGE_ID] === stageJobId(id, "factcheck")),
    ).toHaveLength(2);
  });

  it("shows the model client's own retry as two numbered HTTP attempts and a retry event inside one chat span", async () => {
    // A plain research's spans + one more HTTP attempt under chat gpt-4.1.
    const { view, trace } = await runResearch("How efficient are modern solar panels? [[sim:fault=500;model=gpt-4.1;times=1]]", 1);
    expect(view.stages.analysis.attempts).toBe(1);

    const process = trace.one("process research-analysis", SpanKind.CONSUMER);
    expect(process.attributes[ATTR_JOB_ATTEMPT]).toBe(1);
    const chat = trace.one("chat gpt-4.1", SpanKind.CLIENT);
    // One model call, in the stage's agent run under the one CONSUMER span.
    const agent = trace.one("invoke_agent analysis");
    expect(parentIdOf(agent)).toBe(idOf(process));
    expect(parentIdOf(chat)).toBe(idOf(agent));
    expect(chat.status.code).toBe(SpanStatusCode.OK);
    expect(chat.attributes[ATTR_GEN_AI_RESPONSE_ID]).toMatch(/^chatcmpl-/);

    const attempts = trace.childrenOf(chat);
    expect(attempts.map((a) => a.name)).toEqual(["POST", "POST"]);
    const [failed, resent] = attempts as [ReadableSpan, ReadableSpan];
    expect(failed.attributes).toMatchObject({
      [ATTR_HTTP_REQUEST_RESEND_COUNT]: 0,
      [ATTR_HTTP_RESPONSE_STATUS_CODE]: 500,
      [ATTR_ERROR_TYPE]: "500",
    });
    expect(failed.status.code).toBe(SpanStatusCode.ERROR);
    expect(resent.attributes).toMatchObject({ [ATTR_HTTP_REQUEST_RESEND_COUNT]: 1, [ATTR_HTTP_RESPONSE_STATUS_CODE]: 200 });
    // LLM_RETRY_BASE_MS=20: the first backoff sleeps 10-20 ms (half plus jitter); Date.now() may show 1 ms less.
    const delayMs = resent.attributes[ATTR_RETRY_DELAY_MS] as number;
    expect(delayMs).toBeGreaterThanOrEqual(9);
    expect(hrMs(resent.startTime) - hrMs(failed.endTime)).toBeGreaterThanOrEqual(delayMs - 1);
    expect(resent.status.code).not.toBe(SpanStatusCode.ERROR);
    expect(hrMs(resent.startTime)).toBeGreaterThanOrEqual(hrMs(failed.endTime));

    const retries = chat.events.filter((e) => e.name === "retry");
    expect(retries).toHaveLength(1);
    expect(retries[0]!.attributes).toMatchObject({
      [ATTR_HTTP_REQUEST_RESEND_COUNT]: 1,
      [ATTR_HTTP_RESPONSE_STATUS_CODE]: 500,
      [ATTR_RETRY_DELAY_MS]: delayMs,
    });
  });
});
