import { describe, expect, it } from "vitest";
import { SpanKind, SpanStatusCode } from "@opentelemetry/api";
import { useTracedPipeline } from "../support/traced-pipeline-fixture.js";
import { hrMs, spansOfResearch, waitForTrace } from "../support/spans.js";
import { ATTR_LLM_ATTEMPTS } from "@tracelane/pipeline";
import { ATTR_HTTP_REQUEST_RESEND_COUNT, ATTR_HTTP_RESPONSE_STATUS_CODE } from "@tracelane/tracing/attributes";

const ctx = useTracedPipeline({
  simulator: { retryAfterS: 1 },
  env: { LLM_MAX_RETRIES: "3", LLM_RETRY_BASE_MS: "20", LLM_TIMEOUT_MS: "400", BREAKER_THRESHOLD: "1000" },
});

/** Run one research to completion and return the HTTP attempts under its analysis model call. */
async function analysisAttempts(query: string) {
  const { body } = await ctx.api.submit({ query });
  const view = await ctx.pipeline.waitForFinal(body.id, 20_000);
  expect(view.status, JSON.stringify(view.error)).toBe("completed");
  expect(view.stages.analysis.attempts).toBe(1); // recovered inside the call, not by a job retry
  // At least a plain research's spans; the retried attempts add one HTTP span each.
  const trace = await waitForTrace(ctx.tracing, body.traceId, spansOfResearch(view));
  const chat = trace.one("chat gpt-4.1", SpanKind.CLIENT);
  return { chat, attempts: trace.childrenOf(chat).filter((s) => s.kind === SpanKind.CLIENT), view };
}

describe("transient model-call failures are retried inside the call, each attempt visible", () => {
  it("retries a 429 after the provider's Retry-After", async () => {
    const { chat, attempts } = await analysisAttempts("Rate limited once [[sim:fault=429;model=gpt-4.1;times=1]]");
    expect(attempts.map((a) => a.attributes[ATTR_HTTP_RESPONSE_STATUS_CODE])).toEqual([429, 200]);
    expect(attempts.map((a) => a.attributes[ATTR_HTTP_REQUEST_RESEND_COUNT])).toEqual([0, 1]);
    // Retry-After: 1 second, honoured rather than the 20 ms base backoff.
    expect(hrMs(attempts[1]!.startTime) - hrMs(attempts[0]!.endTime)).toBeGreaterThanOrEqual(950);
    expect(chat.attributes[ATTR_LLM_ATTEMPTS]).toBe(2);
    expect(chat.events.filter((e) => e.name === "retry")).toHaveLength(1);
  });

  it("retries 500 and 503 with backoff", async () => {
    const { attempts } = await analysisAttempts("Server errors [[sim:fault=500;model=gpt-4.1;times=1]]");
    expect(attempts.map((a) => a.attributes[ATTR_HTTP_RESPONSE_STATUS_CODE])).toEqual([500, 200]);
    expect(attempts[0]!.status.code).toBe(SpanStatusCode.ERROR);
    const second = await analysisAttempts("Unavailable [[sim:fault=503;model=gpt-4.1;times=2]]");
    expect(second.attempts.map((a) => a.attributes[ATTR_HTTP_RESPONSE_STATUS_CODE])).toEqual([503, 503, 200]);
  });

  it("retries a malformed response body", async () => {
    const { chat, attempts } = await analysisAttempts("Garbled [[sim:fault=malformed;model=gpt-4.1;times=1]]");
    expect(attempts).toHaveLength(2);
    expect(chat.attributes[ATTR_LLM_ATTEMPTS]).toBe(2);
  });

  it("retries a call that hangs past the client timeout", async () => {
    const { attempts } = await analysisAttempts("Hangs once [[sim:fault=hang;model=gpt-4.1;times=1]]");
    expect(attempts).toHaveLength(2);
    expect(attempts[0]!.status.code).toBe(SpanStatusCode.ERROR);
    expect(attempts[1]!.attributes[ATTR_HTTP_RESPONSE_STATUS_CODE]).toBe(200);
  });

  it("gives up after the bounded number of retries and lets the job's own attempts take over", async () => {
    // 3 retries inside the call + the first try = 4 failures; the job's second attempt succeeds.
    const { body } = await ctx.api.submit({ query: "Down for a while [[sim:fault=503;model=deepseek-v3.2;times=4]]" });
    const view = await ctx.pipeline.waitForFinal(body.id, 20_000);
    expect(view.status, JSON.stringify(view.error)).toBe("completed");
    expect(view.stages.synthesis.attempts).toBe(2);
    const events = await ctx.api.events(body.id);
    const retrying = events.filter((e) => e.event === "stage.retrying");
    expect(retrying).toHaveLength(1);
    expect(retrying[0]?.data).toMatchObject({ stage: "synthesis", data: { error: { type: "http_503" } } });
    // A plain research's spans + the failed job attempt's CONSUMER, invoke_agent and chat, and its call's four
    // HTTP attempts; the job's second attempt made one.
    const trace = await waitForTrace(ctx.tracing, body.traceId, spansOfResearch(view) + 3 + 4);
    const chats = trace.all("chat deepseek-v3.2", SpanKind.CLIENT).sort((a, b) => hrMs(a.startTime) - hrMs(b.startTime));
    expect(chats.map((c) => trace.childrenOf(c).map((a) => a.attributes[ATTR_HTTP_RESPONSE_STATUS_CODE]))).toEqual([
      [503, 503, 503, 503],
      [200],
    ]);
  });
});
