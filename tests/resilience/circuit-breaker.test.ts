import { describe, expect, it } from "vitest";
import { SpanKind, SpanStatusCode } from "@opentelemetry/api";
import { useTracedPipeline } from "../support/traced-pipeline-fixture.js";
import { waitForTrace } from "../support/spans.js";
import { ATTR_CIRCUIT_STATE, ATTR_FALLBACK_FROM } from "@tracelane/pipeline";
import { ATTR_ERROR_TYPE } from "@tracelane/tracing/attributes";

const ctx = useTracedPipeline({
  // Two consecutive failed calls open a circuit, which stays open for the whole test; a job whose
  // every model is open fails at once instead of waiting (tests/resilience/circuit-open-wait covers the wait).
  env: { LLM_MAX_RETRIES: "0", JOB_ATTEMPTS: "2", BREAKER_THRESHOLD: "2", BREAKER_HALF_OPEN_MS: "600000", CIRCUIT_OPEN_MAX_WAIT_MS: "0" },
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
    expect(primary.attributes[ATTR_ERROR_TYPE]).toBe("CircuitOpenError");
    expect(primary.attributes[ATTR_CIRCUIT_STATE]).toBe("open");
    expect(trace.childrenOf(primary)).toHaveLength(0); // failed fast: no HTTP call
    const fallback = trace.one("chat gemini-2.5-flash-lite", SpanKind.CLIENT);
    expect(fallback.attributes[ATTR_FALLBACK_FROM]).toBe("gemini-2.5-flash");
    expect(fallback.attributes[ATTR_CIRCUIT_STATE]).toBe("closed");
    const consumer = trace.one("process research-factcheck", SpanKind.CONSUMER);
    expect(consumer.events.map((e) => e.name)).toContain("fallback");
  });

  it("fails with circuit_open, naming both, once the fallback's circuit is open too and the wait bound is spent", async () => {
    // gemini-2.5-flash is open (first test): this research's factcheck goes to the fallback, which fails twice and opens.
    const broken = await ctx.api.submit({ query: "Fallback outage too [[sim:fault=503;model=gemini-2.5-flash-lite]]" });
    expect((await ctx.pipeline.waitForFinal(broken.body.id, 20_000)).error).toMatchObject({ stage: "factcheck", type: "http_503" });

    const { body } = await ctx.api.submit({ query: "Healthy question while both factcheck models are down" });
    const view = await ctx.pipeline.waitForFinal(body.id, 20_000);
    expect(view.status).toBe("failed");
    expect(view.error).toMatchObject({ stage: "factcheck", type: "circuit_open" });
    expect(view.error!.message).toMatch(/"gemini-2\.5-flash" and its fallback "gemini-2\.5-flash-lite" are both failing/);
    expect(view.stages.factcheck.attempts).toBe(1); // failed for good at once: no job retry of an open circuit
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
