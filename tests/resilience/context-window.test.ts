import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { SpanKind, SpanStatusCode } from "@opentelemetry/api";
import { useInMemoryTracing, type InMemoryTracing } from "@tracelane/tracing/testing";
import { apiClient, type ApiClient } from "../support/api-client.js";
import { startInProcessPipeline, type InProcessPipeline } from "../support/in-process-pipeline.js";
import { waitForTrace, spansOfResearch } from "../support/spans.js";
import { ATTR_CONTEXT_RETRY_AFTER_OVERFLOW, ATTR_CONTEXT_STRATEGY, ATTR_CONTEXT_TRIMMED_TOKENS, ATTR_PURPOSE } from "@tracelane/pipeline";
import { ATTR_ERROR_TYPE, ATTR_GEN_AI_USAGE_INPUT_TOKENS } from "@tracelane/tracing/attributes";

// "small-known": the workers' model table gives it room for 150 input tokens, so they trim before calling.
// "small-hidden": only the provider knows its 450-token window, so the first call overflows.
const OUTPUT_TOKENS = 200;
const env = {
  TRACELANE_CONTEXT_LIMITS: JSON.stringify({ "small-known": 150 + OUTPUT_TOKENS }),
  LLM_MAX_OUTPUT_TOKENS: String(OUTPUT_TOKENS),
  BREAKER_THRESHOLD: "1000",
  // Test models the price table does not know: allowed by the operator, for the api and the workers.
  ANALYSIS_ALLOWED_MODELS: "small-known",
  SYNTHESIS_ALLOWED_MODELS: "small-known,small-hidden",
};

let tracing: InMemoryTracing;
let api: ApiClient;
let pipeline: InProcessPipeline;

beforeAll(async () => {
  tracing = useInMemoryTracing();
  pipeline = await startInProcessPipeline({
    redisUrl: inject("redisUrl"),
    simulator: { contextLimits: { "small-hidden": 450 } },
    env,
  });
  api = apiClient(pipeline.apiUrl);
});

afterAll(async () => {
  await pipeline?.close();
  await tracing?.shutdown();
});

describe("context window", () => {
  it("trims the oldest material to fit a model's known window, keeping the question, and records it", async () => {
    const { body } = await api.submit({ query: "Trim me", options: { models: { synthesis: "small-known" } } });
    const view = await pipeline.waitForFinal(body.id, 20_000);
    expect(view.status, JSON.stringify(view.error)).toBe("completed");
    // Budget = window - max output tokens = 150 input tokens.
    expect(view.stages.synthesis.usage!.inputTokens).toBeLessThanOrEqual(150);
    const trace = await waitForTrace(tracing, body.traceId, spansOfResearch(view));
    const chat = trace.one("chat small-known", SpanKind.CLIENT);
    expect(Number(chat.attributes[ATTR_CONTEXT_TRIMMED_TOKENS])).toBeGreaterThan(0);
    expect(chat.attributes[ATTR_CONTEXT_STRATEGY]).toBe("trim");
  });

  it("trims and retries once when the provider reports context_length_exceeded", async () => {
    const { body } = await api.submit({ query: "Overflow once", options: { models: { synthesis: "small-hidden" } } });
    const view = await pipeline.waitForFinal(body.id, 20_000);
    expect(view.status, JSON.stringify(view.error)).toBe("completed");
    expect(view.stages.synthesis.attempts).toBe(1);
    expect(view.stages.synthesis.usage!.inputTokens + OUTPUT_TOKENS).toBeLessThanOrEqual(450);
    const trace = await waitForTrace(tracing, body.traceId, 15);
    const [first, second] = trace.all("chat small-hidden", SpanKind.CLIENT);
    expect(first!.status.code).toBe(SpanStatusCode.ERROR);
    expect(first!.attributes[ATTR_ERROR_TYPE]).toBe("ContextLengthExceededError");
    expect(second!.attributes[ATTR_CONTEXT_RETRY_AFTER_OVERFLOW]).toBe(true);
    expect(second!.status.code).not.toBe(SpanStatusCode.ERROR);
  });

  it("fails at once, saying what to do, when the question alone does not fit", async () => {
    const query = "Why does the long question not fit? ".repeat(100);
    const { body } = await api.submit({ query, options: { models: { analysis: "small-known" } } });
    const view = await pipeline.waitForFinal(body.id, 20_000);
    expect(view.status).toBe("failed");
    expect(view.error).toMatchObject({ stage: "analysis", type: "context_length_exceeded" });
    expect(view.error!.message).toMatch(/too long after trimming/);
    expect(view.error!.message).toMatch(/ANALYSIS_MODEL/);
    expect(view.stages.analysis.attempts).toBe(1);
  });
});

describe("context window, summarise strategy", () => {
  let summarizing: InProcessPipeline;
  beforeAll(async () => {
    summarizing = await startInProcessPipeline({
      redisUrl: inject("redisUrl"),
      env: { ...env, CONTEXT_STRATEGY: "summarize", SUMMARY_MODEL: "gpt-4.1-nano" },
    });
  });
  afterAll(async () => {
    await summarizing?.close();
  });

  it("summarises older material with the cheap model first and counts its tokens and cost in the stage", async () => {
    const client = apiClient(summarizing.apiUrl);
    const { body } = await client.submit({ query: "Summarise me", options: { models: { synthesis: "small-known" } } });
    const view = await summarizing.waitForFinal(body.id, 20_000);
    expect(view.status, JSON.stringify(view.error)).toBe("completed");
    const trace = await waitForTrace(tracing, body.traceId, 15);
    const summaries = trace.all("chat gpt-4.1-nano", SpanKind.CLIENT);
    expect(summaries.length).toBeGreaterThanOrEqual(1);
    expect(summaries[0]!.attributes[ATTR_PURPOSE]).toBe("summarize_for_context");
    const main = trace.one("chat small-known", SpanKind.CLIENT);
    const summaryIn = summaries.reduce((n, s) => n + Number(s.attributes[ATTR_GEN_AI_USAGE_INPUT_TOKENS]), 0);
    expect(view.stages.synthesis.usage!.inputTokens).toBe(Number(main.attributes[ATTR_GEN_AI_USAGE_INPUT_TOKENS]) + summaryIn);
    // The main model is unpriced (null); summaries of a priced model do not hide that.
    expect(view.stages.synthesis.costUsd).toBeNull();
  });
});
