import { describe, expect, it } from "vitest";
import { SpanKind, SpanStatusCode } from "@opentelemetry/api";
import { toNanoUsd } from "@tracelane/pricing";
import { claimJobId } from "@tracelane/queue-contract";
import { waitFor } from "@tracelane/testkit";
import { simulatorStats } from "../support/simulator.js";
import { waitForTrace } from "../support/spans.js";
import { useTracedPipeline } from "../support/traced-pipeline-fixture.js";
import { ATTR_CANCEL_REASON, ATTR_ERROR_TYPE, ATTR_MESSAGING_MESSAGE_ID } from "@tracelane/tracing/attributes";

// factcheck's model answers after 1.5 s, so the test can cancel while claim calls are in flight; three claims
// at a time, so the rest are still waiting in the queue when it does.
const IN_FLIGHT = 3;
const ctx = useTracedPipeline({
  simulator: { latency: { baseMs: 0, jitterMs: 0, models: { "gemini-2.5-flash": { baseMs: 1_500, jitterMs: 0 } } } },
  stageEnv: { factcheck: { WORKER_CONCURRENCY: String(IN_FLIGHT) } },
});

const simUrl = () => ctx.pipeline.simulator.baseURL.replace(/\/v1$/, "");
/** Requests the simulator is answering right now. */
async function inFlight(): Promise<number> {
  return ((await (await fetch(`${simUrl()}/_sim/stats`)).json()) as { inFlight: number }).inFlight;
}

// gemini-2.5-flash list price: $0.30 in, $0.03 cached in, $2.50 out per 1M tokens, in nano-dollars per token.
const geminiNano = (u: { inputTokens: number; outputTokens: number; cachedInputTokens?: number }) =>
  Math.round((u.inputTokens - (u.cachedInputTokens ?? 0)) * 300 + (u.cachedInputTokens ?? 0) * 30 + u.outputTokens * 2_500);

describe("cancel while claims are checked", () => {
  it("stops every claim at its next turn, counts what the calls in flight cost, runs no waiting claim, and the trace says cancelled", async () => {
    const before = await simulatorStats(simUrl());
    const { body } = await ctx.api.submit({ query: "How long do grid batteries last? (cancelled mid-factcheck)" });
    const { id, traceId } = body;
    await waitFor(async () => (await inFlight()) === IN_FLIGHT, { what: "three claim calls to be in flight", intervalMs: 20 });

    const cancelled = await ctx.api.cancel(id);
    expect(cancelled.status).toBe(200);
    expect(cancelled.body).toMatchObject({
      status: "cancelled",
      stages: { analysis: { status: "completed" }, factcheck: { status: "cancelled" }, synthesis: { status: "skipped" } },
    });

    // The calls in flight still finish and are paid for: each claim records its call and stops before its next turn.
    const view = await waitFor(
      async () => {
        const v = await ctx.pipeline.store.get(id);
        return v?.stages.factcheck.claims?.filter((c) => c.usage).length === IN_FLIGHT ? v : undefined;
      },
      { what: "the claims in flight to be recorded" },
    );
    await new Promise((r) => setTimeout(r, 500)); // a claim that wrongly went on would call again by now
    const after = await simulatorStats(simUrl());
    const { analysis, factcheck, synthesis } = view.stages;
    const paid = factcheck.claims!.filter((c) => c.usage);
    expect((after.byModel["gemini-2.5-flash"] ?? 0) - (before.byModel["gemini-2.5-flash"] ?? 0)).toBe(IN_FLIGHT);
    for (const c of paid) {
      expect(c).toMatchObject({ status: "failed", error: { type: "cancelled" }, modelCalls: 1 });
      expect(toNanoUsd(c.costUsd!)).toBe(geminiNano(c.usage!));
    }
    // The claims that were still waiting never ran.
    expect(factcheck.claims!.filter((c) => !c.usage).every((c) => c.status === "queued" && c.attempts === 0)).toBe(true);
    expect(factcheck.claims!.length).toBeGreaterThan(IN_FLIGHT);
    expect(factcheck).toMatchObject({ status: "cancelled", model: "gemini-2.5-flash" });
    expect(synthesis).toMatchObject({ status: "skipped", attempts: 0 });
    expect(toNanoUsd(factcheck.costUsd!)).toBe(paid.reduce((n, c) => n + toNanoUsd(c.costUsd!), 0));
    expect(view.totals.inputTokens).toBe(analysis.usage!.inputTokens + factcheck.usage!.inputTokens);
    expect(toNanoUsd(view.totals.costUsd)).toBe(toNanoUsd(analysis.costUsd!) + toNanoUsd(factcheck.costUsd!));

    // POST, analysis (publish, process, agent, chat, HTTP), the fact-check's publish, process and fan-out agent,
    // a publish per claim, per claim in flight its process, agent, chat and HTTP attempt and the tool runs that
    // chat asked for (each with its request), and the fact-check's job once more: back when its last claim
    // ended or was removed, it finds the research cancelled. Nothing after.
    const tools = paid.reduce((n, c) => n + c.toolCalls!, 0);
    const spans = 1 + 5 + 3 + factcheck.claims!.length + IN_FLIGHT * 4 + 2 * tools + 1;
    const trace = await waitForTrace(ctx.tracing, traceId, spans);
    expect(trace.spans, trace.describe()).toHaveLength(spans);
    const claimProcesses = trace
      .all("process research-factcheck", SpanKind.CONSUMER)
      .filter((s) => s.attributes[ATTR_MESSAGING_MESSAGE_ID] !== `${id}-factcheck`);
    expect(claimProcesses.map((s) => s.attributes[ATTR_MESSAGING_MESSAGE_ID]).sort()).toEqual(
      paid.map((c) => claimJobId(id, "factcheck", c.index)).sort(),
    );
    for (const process of claimProcesses) {
      expect(process.status).toEqual({ code: SpanStatusCode.ERROR, message: "cancelled: research cancelled while the claim was checked" });
      expect(process.attributes[ATTR_ERROR_TYPE]).toBe("cancelled");
      expect(process.events.map((e) => [e.name, e.attributes?.[ATTR_CANCEL_REASON]])).toContainEqual([
        "cancelled",
        "research cancelled while the claim was checked",
      ]);
    }
    // The model calls themselves succeeded; nothing was published after the fan-out.
    for (const chat of trace.all("chat gemini-2.5-flash", SpanKind.CLIENT)) expect(chat.status.code).toBe(SpanStatusCode.OK);
    expect(trace.all("publish research-synthesis")).toEqual([]);
    expect(trace.one("process research-analysis", SpanKind.CONSUMER).status.code).toBe(SpanStatusCode.OK);

    const events = (await ctx.pipeline.store.events(id)).map((e) => e.type);
    expect(events.filter((e) => !e.startsWith("claim."))).toEqual([
      "research.queued",
      "stage.started",
      "stage.completed",
      "stage.started",
      "research.cancelled",
    ]);
    expect(events.filter((e) => e === "claim.started")).toHaveLength(IN_FLIGHT);
  });
});
