import { describe, expect, it } from "vitest";
import { SpanKind, SpanStatusCode } from "@opentelemetry/api";
import { useTracedPipeline } from "../support/traced-pipeline-fixture.js";
import { waitForTrace } from "../support/spans.js";

const ctx = useTracedPipeline({
  // Two consecutive failures open a circuit, which stays open for the whole test.
  env: { LLM_MAX_RETRIES: "0", JOB_ATTEMPTS: "2", BREAKER_THRESHOLD: "2", BREAKER_HALF_OPEN_MS: "600000" },
  stageEnv: { factcheck: { FACTCHECK_FALLBACK_MODEL: "gemini-2.5-flash-lite" } },
});

describe("circuit breaker per provider and model", () => {
  it("opens after repeated failures, then the stage uses its fallback model and the trace shows it", async () => {
    const broken = await ctx.api.submit({ query: "Provider outage [[sim:fault=503;model=gemini-2.5-flash]]" });
    const failed = await ctx.pipeline.waitForFinal(broken.body.id, 20_000);
    expect(failed.status).toBe("failed");
    expect(failed.error).toMatchObject({ stage: "factcheck", type: "http_503" });

    const { body } = await ctx.api.submit({ query: "Healthy question while gemini-2.5-flash is down" });
    const view = await ctx.pipeline.waitForFinal(body.id, 20_000);
    expect(view.status, JSON.stringify(view.error)).toBe("completed");
    expect(view.stages.factcheck.model).toBe("gemini-2.5-flash-lite");

    const trace = await waitForTrace(ctx.tracing, body.traceId, 14);
    const primary = trace.one("chat gemini-2.5-flash", SpanKind.CLIENT);
    expect(primary.status.code).toBe(SpanStatusCode.ERROR);
    expect(primary.attributes["error.type"]).toBe("CircuitOpenError");
    expect(primary.attributes["tracelane.circuit.state"]).toBe("open");
    expect(trace.childrenOf(primary)).toHaveLength(0); // failed fast: no HTTP call
    const fallback = trace.one("chat gemini-2.5-flash-lite", SpanKind.CLIENT);
    expect(fallback.attributes["tracelane.fallback.from"]).toBe("gemini-2.5-flash");
    expect(fallback.attributes["tracelane.circuit.state"]).toBe("closed");
    const consumer = trace.one("process research-factcheck", SpanKind.CONSUMER);
    expect(consumer.events.map((e) => e.name)).toContain("fallback");
  });

  it("fails fast with a clear error when the open circuit's stage has no fallback", async () => {
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
