import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { useInMemoryTracing, type InMemoryTracing } from "@tracelane/tracing/testing";
import { apiClient } from "../support/api-client.js";
import { simulatorStats } from "../support/simulator.js";
import { waitFor } from "@tracelane/testkit";
import { startInProcessPipeline, type InProcessPipeline } from "../support/in-process-pipeline.js";

let tracing: InMemoryTracing;
beforeAll(() => {
  tracing = useInMemoryTracing();
});
afterAll(async () => {
  await tracing?.shutdown();
});

// o1-pro has no price, so only an operator's <STAGE>_ALLOWED_MODELS lets a request name it (api and workers).
const ALLOW_O1_PRO = {
  ANALYSIS_ALLOWED_MODELS: "o1-pro",
  FACTCHECK_ALLOWED_MODELS: "o1-pro",
  SYNTHESIS_ALLOWED_MODELS: "o1-pro,claude-opus-4.1",
};

describe("cost budget per research", () => {
  let pipeline: InProcessPipeline;
  beforeAll(async () => {
    pipeline = await startInProcessPipeline({ redisUrl: inject("redisUrl"), env: ALLOW_O1_PRO });
  });
  afterAll(async () => {
    await pipeline?.close();
  });

  it("stops before a stage whose estimated cost exceeds what is left, keeping the partial results", async () => {
    const api = apiClient(pipeline.apiUrl);
    const simulatorUrl = pipeline.simulator.baseURL.replace(/\/v1$/, "");
    const before = (await simulatorStats(simulatorUrl)).byModel["claude-opus-4.1"] ?? 0;
    // gpt-4.1 and gemini-2.5-flash cost well under a cent here; claude-opus-4.1 ($15/$75 per 1M)
    // with up to 1,024 output tokens is estimated above the rest of a 2-cent budget.
    const { body } = await api.submit({
      query: "Budgeted question",
      options: { maxCostUsd: 0.02, models: { synthesis: "claude-opus-4.1" } },
    });
    const view = await pipeline.waitForFinal(body.id, 20_000);
    expect(view.status).toBe("failed");
    expect(view.error).toMatchObject({ stage: "synthesis", type: "budget_exceeded" });
    expect(view.error!.message).toMatch(/maxCostUsd \$0\.02/);
    expect(view.error!.message).toMatch(/Raise options\.maxCostUsd or choose cheaper models/);
    expect(view.partialResult?.analysis?.length).toBeGreaterThan(0);
    expect(view.partialResult?.factCheck?.length).toBeGreaterThan(0);
    expect(view.stages.synthesis.attempts).toBe(1);
    expect(view.totals.costUsd).toBeLessThan(0.02);
    // Stopped before the call: the expensive model was never asked.
    expect((await simulatorStats(simulatorUrl)).byModel["claude-opus-4.1"] ?? 0).toBe(before);
  });

  it("fails closed with budget_unverifiable, before any call, when a budgeted research names a model with no price", async () => {
    const api = apiClient(pipeline.apiUrl);
    const simulatorUrl = pipeline.simulator.baseURL.replace(/\/v1$/, "");
    const before = (await simulatorStats(simulatorUrl)).byModel["o1-pro"] ?? 0;
    const { body } = await api.submit({
      query: "Budgeted question on an unpriced model",
      options: { maxCostUsd: 0.000001, models: { analysis: "o1-pro", factcheck: "o1-pro", synthesis: "o1-pro" } },
    });
    const view = await pipeline.waitForFinal(body.id, 20_000);
    expect(view.status).toBe("failed");
    expect(view.error).toMatchObject({ stage: "analysis", type: "budget_unverifiable" });
    expect(view.error!.message).toBe(
      "Stopped before analysis: o1-pro has no price in the price table, so maxCostUsd $0.000001 cannot be enforced. " +
        "Choose a priced model, add o1-pro to the price table (TRACELANE_PRICE_TABLE), or set ALLOW_UNPRICED_MODELS=true on the analysis worker.",
    );
    expect(view.stages.analysis.attempts).toBe(1);
    expect((await simulatorStats(simulatorUrl)).byModel["o1-pro"] ?? 0).toBe(before);
  });

  it("runs every stage when the budget covers them", async () => {
    const api = apiClient(pipeline.apiUrl);
    const { body } = await api.submit({ query: "Affordable question", options: { maxCostUsd: 1 } });
    expect((await pipeline.waitForFinal(body.id, 20_000)).status).toBe("completed");
  });
});

describe("unpriced models allowed by the operator (ALLOW_UNPRICED_MODELS=true)", () => {
  let pipeline: InProcessPipeline;
  beforeAll(async () => {
    pipeline = await startInProcessPipeline({ redisUrl: inject("redisUrl"), env: { ALLOW_UNPRICED_MODELS: "true", ...ALLOW_O1_PRO } });
  });
  afterAll(async () => {
    await pipeline?.close();
  });

  it("calls the unpriced model despite the budget and marks its cost unknown", async () => {
    const api = apiClient(pipeline.apiUrl);
    const { body } = await api.submit({
      query: "Operator accepts unknown costs",
      options: { maxCostUsd: 0.05, models: { analysis: "o1-pro" } },
    });
    const view = await pipeline.waitForFinal(body.id, 20_000);
    expect(view.status).toBe("completed");
    expect(view.stages.analysis.model).toBe("o1-pro");
    expect(view.stages.analysis.costUsd).toBeNull();
  });
});

describe("rate limits toward providers", () => {
  let pipeline: InProcessPipeline;
  beforeAll(async () => {
    pipeline = await startInProcessPipeline({
      redisUrl: inject("redisUrl"),
      simulator: { retryAfterS: 1 },
      // No retries inside the call: a 429 goes straight to the queue-wide backoff.
      // One claim per research: the factcheck queue's rate limit counts every job in it (a parent, its claims and
      // the parent's return from waiting), so 8 claims would make 6 researches take ~30 s at 2 jobs a second.
      env: { LLM_MAX_RETRIES: "0", BREAKER_THRESHOLD: "1000", MAX_CLAIMS: "1" },
      stageEnv: { factcheck: { WORKER_RATE_LIMIT_MAX: "2", WORKER_RATE_LIMIT_DURATION_MS: "1000" } },
    });
  });
  afterAll(async () => {
    await pipeline?.close();
  });

  it("backs the whole queue off for the provider's Retry-After on a 429, without spending an attempt", async () => {
    const api = apiClient(pipeline.apiUrl);
    const limited = await api.submit({ query: "Rate limited [[sim:fault=429;model=gpt-4.1;times=1]]" });
    // Once the 429 has paused the queue, a new research must wait too.
    await waitFor(async () => (await pipeline.store.events(limited.body.id)).some((e) => e.type === "stage.retrying"), {
      what: "the 429 to pause the analysis queue",
    });
    const bystander = await api.submit({ query: "Submitted while the queue is backing off" });

    const [a, b] = await Promise.all([pipeline.waitForFinal(limited.body.id, 20_000), pipeline.waitForFinal(bystander.body.id, 20_000)]);
    expect(a.status).toBe("completed");
    expect(b.status).toBe("completed");
    const events = await api.events(limited.body.id);
    expect(events.find((e) => e.event === "stage.retrying")?.data).toMatchObject({ data: { error: { type: "rate_limited" } } });
    expect(events.filter((e) => e.event === "research.failed")).toHaveLength(0);
    // The other research waited for the backoff too instead of hitting the provider.
    expect(b.stages.analysis.queueWaitMs).toBeGreaterThanOrEqual(500);
  });

  it("limits a stage to its configured rate across the queue", async () => {
    const api = apiClient(pipeline.apiUrl);
    const ids = await Promise.all(Array.from({ length: 6 }, async (_, i) => (await api.submit({ query: `Limited ${i}` })).body.id));
    const views = await Promise.all(ids.map((id) => pipeline.waitForFinal(id, 30_000)));
    const starts = views.map((v) => Date.parse(v.stages.factcheck.startedAt!)).sort((x, y) => x - y);
    // 2 per second: the 6 factcheck jobs cannot all start within 2 s.
    expect(starts[5]! - starts[0]!).toBeGreaterThanOrEqual(1_900);
  });
});
