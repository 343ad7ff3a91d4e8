import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { SpanKind, SpanStatusCode } from "@opentelemetry/api";
import { useTracedPipeline } from "../support/traced-pipeline-fixture.js";
import { serializeSpans, waitForTrace, spansOfResearch } from "../support/spans.js";
import { ATTR_HTTP_RESPONSE_STATUS_CODE } from "@tracelane/tracing/attributes";

// A key no code path could produce by accident: if it shows up anywhere, it was copied there.
const CANARY = `sk-canary-${randomBytes(12).toString("hex")}`;

const ctx = useTracedPipeline({
  // The simulator accepts only the canary, so a completed research proves the workers sent it.
  simulator: { apiKey: CANARY },
  env: { LLM_API_KEY: CANARY },
});

describe("API keys never reach a span", () => {
  it("keeps the provider API key out of every span of a completed and of a rejected research", async () => {
    const ok = await ctx.api.submit({ query: "What drives the cost of desalinated water?" });
    const rejected = await ctx.api.submit({ query: "What drives the cost of desalinated water? [[sim:fault=401;model=gpt-4.1]]" });
    expect([ok.status, rejected.status]).toEqual([202, 202]);

    const okView = await ctx.pipeline.waitForFinal(ok.body.id);
    expect(okView.status, JSON.stringify(okView.error)).toBe("completed");
    const rejectedView = await ctx.pipeline.waitForFinal(rejected.body.id);
    expect(rejectedView.status).toBe("failed");
    expect(rejectedView.error).toMatchObject({ stage: "analysis", type: "provider_auth" });

    // Every span of both traces, so the check below sees them all.
    await waitForTrace(ctx.tracing, ok.body.traceId, spansOfResearch(okView));
    // SERVER, PRODUCER, CONSUMER, the stage's agent, chat and its one HTTP attempt: an auth failure is not retried.
    const failedTrace = await waitForTrace(ctx.tracing, rejected.body.traceId, 6);
    const chat = failedTrace.one("chat gpt-4.1", SpanKind.CLIENT);
    expect(chat.status.code).toBe(SpanStatusCode.ERROR);
    // The failure itself is in the trace (the message names the variable to fix)...
    const exception = chat.events.find((e) => e.name === "exception");
    expect(String(exception?.attributes?.["exception.message"])).toMatch(/rejected the API key.*LLM_API_KEY/);
    expect(failedTrace.childrenOf(chat)[0]?.attributes[ATTR_HTTP_RESPONSE_STATUS_CODE]).toBe(401);

    // ...but not the key: not in attributes, events, links, status messages or resources of any span.
    const everything = serializeSpans(ctx.tracing.spans());
    expect(everything.length).toBeGreaterThan(1000);
    expect(everything).not.toContain(CANARY);
    // Nor the secret part of it, however it might be cut or masked.
    expect(everything).not.toContain(CANARY.slice("sk-canary-".length, -4));
    for (const span of ctx.tracing.spans()) {
      expect(
        Object.keys(span.attributes).filter((k) => /header|authorization|api[._-]?key/i.test(k)),
        span.name,
      ).toEqual([]);
    }
  });
});
