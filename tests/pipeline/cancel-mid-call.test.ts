import { describe, expect, it } from "vitest";
import { SpanKind, SpanStatusCode } from "@opentelemetry/api";
import { toNanoUsd } from "@tracelane/pricing";
import { waitFor } from "@tracelane/testkit";
import { waitForTrace } from "../support/spans.js";
import { useTracedPipeline } from "../support/traced-pipeline-fixture.js";
import { ATTR_CANCEL_REASON, ATTR_ERROR_TYPE } from "@tracelane/tracing/attributes";

// factcheck's model answers after 1.5 s, so the test can cancel while that call is in flight.
const ctx = useTracedPipeline({
  simulator: { latency: { baseMs: 0, jitterMs: 0, models: { "gemini-2.5-flash": { baseMs: 1_500, jitterMs: 0 } } } },
});

/** Requests the simulator is answering right now. */
async function inFlight(): Promise<number> {
  const res = await fetch(`${ctx.pipeline.simulator.baseURL.replace(/\/v1$/, "")}/_sim/stats`);
  return ((await res.json()) as { inFlight: number }).inFlight;
}

// POST + analysis (publish, process, chat, HTTP) + factcheck (publish, process, chat, HTTP); nothing after.
const SPANS_UNTIL_CANCEL = 1 + 4 + 4;

describe("cancel while a stage runs", () => {
  it("ends the stage as cancelled with its call's cost in the totals, and the trace says cancelled instead of ok", async () => {
    const { body } = await ctx.api.submit({ query: "How long do grid batteries last? (cancelled mid-factcheck)" });
    const { id, traceId } = body;
    await waitFor(async () => (await ctx.pipeline.store.get(id))?.stages.factcheck.status === "running" && (await inFlight()) === 1, {
      what: "the factcheck model call to be in flight",
      intervalMs: 20,
    });

    const cancelled = await ctx.api.cancel(id);
    expect(cancelled.status).toBe(200);
    expect(cancelled.body).toMatchObject({
      status: "cancelled",
      stages: { analysis: { status: "completed" }, factcheck: { status: "cancelled" }, synthesis: { status: "skipped" } },
    });

    // The call in flight still finishes and is paid for: the worker records it on the cancelled stage.
    const view = await waitFor(
      async () => {
        const v = await ctx.pipeline.store.get(id);
        return v?.stages.factcheck.usage ? v : undefined;
      },
      { what: "the factcheck call to be recorded" },
    );
    const { analysis, factcheck, synthesis } = view.stages;
    expect(factcheck).toMatchObject({ status: "cancelled", model: "gemini-2.5-flash", attempts: 1 });
    expect(factcheck.latencyMs).toBeGreaterThanOrEqual(1_500);
    // gemini-2.5-flash list price: $0.30 in / $2.50 out per 1M tokens.
    const { inputTokens, outputTokens } = factcheck.usage!;
    expect(inputTokens).toBeGreaterThan(20);
    expect(factcheck.costUsd).toBe(Math.round(inputTokens * 300 + outputTokens * 2_500) / 1e9);
    expect(synthesis).toMatchObject({ status: "skipped", attempts: 0 });
    expect(view.totals.inputTokens).toBe(analysis.usage!.inputTokens + inputTokens);
    expect(toNanoUsd(view.totals.costUsd)).toBe(toNanoUsd(analysis.costUsd!) + toNanoUsd(factcheck.costUsd!));
    expect(view.totals.costUsd).toBeGreaterThan(analysis.costUsd!);

    const trace = await waitForTrace(ctx.tracing, traceId, SPANS_UNTIL_CANCEL);
    expect(trace.spans, trace.describe()).toHaveLength(SPANS_UNTIL_CANCEL);
    const process = trace.one("process research-factcheck", SpanKind.CONSUMER);
    expect(process.status).toEqual({ code: SpanStatusCode.ERROR, message: "cancelled: research cancelled while the stage ran" });
    expect(process.attributes[ATTR_ERROR_TYPE]).toBe("cancelled");
    expect(process.events.map((e) => [e.name, e.attributes?.[ATTR_CANCEL_REASON]])).toEqual([
      ["cancelled", "research cancelled while the stage ran"],
    ]);
    // The model call itself succeeded; nothing was published after it.
    const chat = trace.one("chat gemini-2.5-flash", SpanKind.CLIENT);
    expect(chat.status.code).toBe(SpanStatusCode.OK);
    expect(trace.childrenOf(process).map((s) => s.name)).toEqual(["chat gemini-2.5-flash"]);
    expect(trace.one("process research-analysis", SpanKind.CONSUMER).status.code).toBe(SpanStatusCode.OK);

    expect((await ctx.pipeline.store.events(id)).map((e) => e.type)).toEqual([
      "research.queued",
      "stage.started",
      "stage.completed",
      "stage.started",
      "research.cancelled",
    ]);
  });
});
