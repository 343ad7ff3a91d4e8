import { describe, expect, it } from "vitest";
import { SpanKind, SpanStatusCode } from "@opentelemetry/api";
import { useTracedPipeline } from "../support/traced-pipeline-fixture.js";
import { idOf, parentIdOf, spansOfResearch, waitForTrace } from "../support/spans.js";
import { ATTR_CIRCUIT_STATE, ATTR_FALLBACK_FROM } from "@tracelane/pipeline";
import { ATTR_ERROR_TYPE } from "@tracelane/tracing/attributes";

const ctx = useTracedPipeline({
  // Two consecutive failed calls open a circuit, which stays open for the whole test; a job whose
  // every model is open fails at once instead of waiting (tests/resilience/circuit-open-wait covers the wait).
  env: { LLM_MAX_RETRIES: "0", JOB_ATTEMPTS: "2", BREAKER_THRESHOLD: "2", BREAKER_HALF_OPEN_MS: "600000", CIRCUIT_OPEN_MAX_WAIT_MS: "0" },
  // Synthesis makes one model call per research (the fact-check's calls are per claim, each its own job).
  stageEnv: { synthesis: { SYNTHESIS_FALLBACK_MODEL: "deepseek-chat" } },
});

describe("circuit breaker per provider and model", () => {
  it("opens after repeated failures, then the stage uses its fallback model and the trace shows it", async () => {
    const broken = await ctx.api.submit({ query: "Provider outage [[sim:fault=503;model=deepseek-v3.2]]" });
    const failed = await ctx.pipeline.waitForFinal(broken.body.id, 20_000);
    expect(failed.status).toBe("failed");
    expect(failed.error).toMatchObject({ stage: "synthesis", type: "http_503" });
    expect(failed.stages.synthesis.attempts).toBe(2);

    const { body } = await ctx.api.submit({ query: "Healthy question while deepseek-v3.2 is down" });
    const view = await ctx.pipeline.waitForFinal(body.id, 20_000);
    expect(view.status, JSON.stringify(view.error)).toBe("completed");
    expect(view.stages.synthesis.model).toBe("deepseek-chat");
    expect(view.stages.synthesis.attempts).toBe(1);

    // A plain research's spans + the primary's chat span, which failed fast (no HTTP attempt under it).
    const spans = spansOfResearch(view) + 1;
    const trace = await waitForTrace(ctx.tracing, body.traceId, spans);
    expect(trace.spans, trace.describe()).toHaveLength(spans);
    const primary = trace.one("chat deepseek-v3.2", SpanKind.CLIENT);
    expect(primary.status.code).toBe(SpanStatusCode.ERROR);
    expect(primary.attributes[ATTR_ERROR_TYPE]).toBe("CircuitOpenError");
    expect(primary.attributes[ATTR_CIRCUIT_STATE]).toBe("open");
    expect(trace.childrenOf(primary)).toHaveLength(0); // failed fast: no HTTP call
    const fallback = trace.one("chat deepseek-chat", SpanKind.CLIENT);
    expect(fallback.attributes[ATTR_FALLBACK_FROM]).toBe("deepseek-v3.2");
    expect(fallback.attributes[ATTR_CIRCUIT_STATE]).toBe("closed");
    expect(fallback.status.code).toBe(SpanStatusCode.OK);
    // Both calls are the stage's one agent run; the fallback is a fact of the stage, on its CONSUMER span.
    const consumer = trace.one("process research-synthesis", SpanKind.CONSUMER);
    const agent = trace.one("invoke_agent synthesis");
    expect(parentIdOf(agent)).toBe(idOf(consumer));
    expect(trace.childrenOf(agent)).toEqual([primary, fallback]);
    expect(consumer.events.map((e) => e.name)).toContain("fallback");
    // The other stages' models were not touched: every claim was checked on gemini-2.5-flash.
    expect(view.stages.factcheck.claims?.every((c) => c.status === "checked" && c.model === "gemini-2.5-flash")).toBe(true);
  });

  it("fails with circuit_open, naming both, once the fallback's circuit is open too and the wait bound is spent", async () => {
    // deepseek-v3.2 is open (first test): this research's synthesis goes to the fallback, which fails twice and opens.
    const broken = await ctx.api.submit({ query: "Fallback outage too [[sim:fault=503;model=deepseek-chat]]" });
    expect((await ctx.pipeline.waitForFinal(broken.body.id, 20_000)).error).toMatchObject({ stage: "synthesis", type: "http_503" });

    const { body } = await ctx.api.submit({ query: "Healthy question while both synthesis models are down" });
    const view = await ctx.pipeline.waitForFinal(body.id, 20_000);
    expect(view.status).toBe("failed");
    expect(view.error).toMatchObject({ stage: "synthesis", type: "circuit_open" });
    expect(view.error!.message).toMatch(/"deepseek-v3\.2" and its fallback "deepseek-chat" are both failing/);
    expect(view.stages.synthesis.attempts).toBe(1); // failed for good at once: no job retry of an open circuit
  });

  it("fails with a clear error when the open circuit's stage has no fallback and the wait bound is spent", async () => {
    const broken = await ctx.api.submit({ query: "Analysis outage [[sim:fault=503;model=gpt-4.1]]" });
    expect((await ctx.pipeline.waitForFinal(broken.body.id, 20_000)).status).toBe("failed");

    const { body } = await ctx.api.submit({ query: "Healthy question while gpt-4.1 is down" });
    const view = await ctx.pipeline.waitForFinal(body.id, 20_000);
    expect(view.status).toBe("failed");
    expect(view.error).toMatchObject({ stage: "analysis", type: "circuit_open" });
    expect(view.error!.message).toMatch(/circuit breaker is open/);
    expect(view.error!.message).toMatch(/ANALYSIS_FALLBACK_MODEL/);
  });
});
