import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startSimulator, type RunningSimulator } from "@tracelane/llm-simulator/testing";
import { loadPriceTable } from "@tracelane/pricing";
import { ChatClient, ModelPolicies } from "@tracelane/stage-runner";
import { useInMemoryTracing, type InMemoryTracing } from "@tracelane/tracing/testing";
import {
  ATTR_GEN_AI_RESPONSE_FINISH_REASONS,
  ATTR_GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS,
  ATTR_GEN_AI_USAGE_INPUT_TOKENS,
  ATTR_GEN_AI_USAGE_OUTPUT_TOKENS,
  ATTR_GEN_AI_USAGE_REASONING_OUTPUT_TOKENS,
  ATTR_PROVIDER_REQUEST_ID,
} from "@tracelane/tracing/attributes";

/** The chat span carries what the provider reports beyond input/output tokens, and the cost reflects it. */
const KEY = "sk-genai-usage-test";
let sim: RunningSimulator;
let tracing: InMemoryTracing;
let client: ChatClient;
const prices = loadPriceTable();

beforeAll(async () => {
  tracing = useInMemoryTracing();
  sim = await startSimulator({ apiKey: KEY, faultRate: 0 });
  client = new ChatClient(
    { baseURL: sim.baseURL, apiKey: KEY, apiKeyVar: "LLM_API_KEY", modelVar: "ANALYSIS_MODEL", timeoutMs: 10_000, maxOutputTokens: 400 },
    prices,
    new ModelPolicies({
      maxRetries: 0,
      retryBaseMs: 10,
      retryMaxDelayMs: 10,
      retryBudgetMs: 10_000,
      breakerThreshold: 100,
      breakerHalfOpenMs: 1_000,
    }),
  );
});
afterAll(async () => {
  await sim?.close();
  await tracing?.shutdown();
});

const SYSTEM = {
  role: "system" as const,
  content: "You are a meticulous research analyst. Cite primary sources; state uncertainty plainly; never guess.",
};

describe("chat spans: cached and reasoning tokens, finish reasons, the provider's request id", () => {
  it("records cache_read and reasoning tokens the provider reports, prices cached input at the cached rate, and keeps x-request-id", async () => {
    tracing.reset();
    await client.chat("o4-mini", [SYSTEM, { role: "user", content: "What drives urban heat islands?" }]);
    const warm = await client.chat("o4-mini", [SYSTEM, { role: "user", content: "How much warmer are cities at night?" }]);
    const [coldSpan, warmSpan] = tracing.spans().filter((s) => s.name === "chat o4-mini");

    expect(coldSpan!.attributes[ATTR_GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS]).toBeUndefined();
    const cached = warmSpan!.attributes[ATTR_GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] as number;
    expect(cached).toBeGreaterThan(10);
    expect(warm.usage.cachedInputTokens).toBe(cached);
    for (const span of [coldSpan!, warmSpan!]) {
      const reasoning = span.attributes[ATTR_GEN_AI_USAGE_REASONING_OUTPUT_TOKENS] as number;
      expect(reasoning).toBeGreaterThan(0);
      expect(span.attributes[ATTR_GEN_AI_USAGE_OUTPUT_TOKENS] as number).toBeGreaterThan(reasoning); // reasoning is part of output
      expect(span.attributes[ATTR_GEN_AI_RESPONSE_FINISH_REASONS]).toEqual(["stop"]);
      expect(span.attributes[ATTR_PROVIDER_REQUEST_ID]).toMatch(/^req_[0-9a-f]{32}$/);
    }
    expect(coldSpan!.attributes[ATTR_PROVIDER_REQUEST_ID]).not.toBe(warmSpan!.attributes[ATTR_PROVIDER_REQUEST_ID]);

    // Cached input at the cached rate, reasoning as output: the cost, token by token.
    const price = prices.lookup("o4-mini")!;
    const input = warmSpan!.attributes[ATTR_GEN_AI_USAGE_INPUT_TOKENS] as number;
    const output = warmSpan!.attributes[ATTR_GEN_AI_USAGE_OUTPUT_TOKENS] as number;
    const expected =
      ((input - cached) * price.inputPer1M + cached * (price.cachedInputPer1M ?? price.inputPer1M) + output * price.outputPer1M) / 1e6;
    expect(warm.costUsd).toBeCloseTo(expected, 9);
  });
});
