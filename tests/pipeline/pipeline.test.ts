import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { waitFor } from "@tracelane/testkit";
import { apiClient, type ApiClient } from "../support/api-client.js";
import { startPipeline } from "../support/pipeline-stack.js";
import { simulatorStats } from "../support/simulator.js";

// Published list prices, USD per 1M tokens (input, output), written out by hand
// so the test checks the price table rather than re-using it.
const LIST_PRICES: Record<string, [number, number]> = {
  "gpt-4.1": [2.0, 8.0],
  "gemini-2.5-flash": [0.3, 2.5],
  "deepseek-v3.2": [0.28, 0.42],
};

let stack: Awaited<ReturnType<typeof startPipeline>>;
let api: ApiClient;

beforeAll(async () => {
  stack = await startPipeline(inject("redisUrl"), {
    replicas: { "llm-simulator": 1, api: 1, "analysis-worker": 2, "factcheck-worker": 1, "synthesis-worker": 1 },
    // slow-model has no price: only an operator's allow-list lets a request name it.
    env: { LLM_SIM_MODEL_LATENCY: JSON.stringify({ "slow-model": { baseMs: 1500, jitterMs: 0 } }), ANALYSIS_ALLOWED_MODELS: "slow-model" },
  });
  api = apiClient(stack.apiUrl!);
});

afterAll(async () => {
  await stack?.stop();
});

const workerCompleted = async (port: number | undefined) => {
  const res = await fetch(`http://127.0.0.1:${port}/healthz`);
  return ((await res.json()) as { worker: { completed: number } }).worker.completed;
};

describe("research pipeline", () => {
  it("runs a query through analysis, factcheck and synthesis and prices every stage from its tokens", async () => {
    const submitted = await api.submit({ query: "What limits the energy density of solid-state batteries?" });
    expect(submitted.status).toBe(202);
    expect(submitted.body.status).toBe("queued");
    const eventsPromise = api.events(submitted.body.id);
    const view = await api.waitForFinal(submitted.body.id);

    expect(view.status).toBe("completed");
    expect(view.result?.analysis.length).toBeGreaterThan(50);
    expect(view.result?.factCheck.length).toBeGreaterThan(50);
    expect(view.result?.finalReport.length).toBeGreaterThan(50);
    expect(view.traceId).toBe(submitted.body.traceId);

    let totalNano = 0;
    let previousEnd = view.createdAt;
    for (const [stage, model] of [
      ["analysis", "gpt-4.1"],
      ["factcheck", "gemini-2.5-flash"],
      ["synthesis", "deepseek-v3.2"],
    ] as const) {
      const s = view.stages[stage];
      expect(s.status).toBe("completed");
      expect(s.model).toBe(model);
      expect(s.attempts).toBe(1);
      expect(s.usage!.inputTokens).toBeGreaterThan(20);
      expect(s.usage!.outputTokens).toBeGreaterThan(20);
      // To the nano-dollar: $X per 1M tokens is 1,000 X nano-dollars per token.
      const [pin, pout] = LIST_PRICES[model]!;
      const expectedNano = Math.round(s.usage!.inputTokens * pin * 1_000 + s.usage!.outputTokens * pout * 1_000);
      expect(s.costUsd).toBe(expectedNano / 1e9);
      // The model call happens between the stage's start and its checkpoint (ISO ms: 1 ms of slack)...
      const startedAt = Date.parse(s.startedAt!);
      expect(s.latencyMs).toBeGreaterThan(0);
      expect(s.latencyMs).toBeLessThanOrEqual(Date.parse(s.finishedAt!) - startedAt + 1);
      // ...and the job waited in its queue from its enqueue (after the previous checkpoint) to that start.
      expect(s.queueWaitMs).toBeLessThanOrEqual(startedAt - Date.parse(previousEnd));
      previousEnd = s.finishedAt!;
      totalNano += expectedNano;
    }
    // Each stage reads the previous outputs, so inputs grow along the pipeline.
    expect(view.stages.synthesis.usage!.inputTokens).toBeGreaterThan(view.stages.factcheck.usage!.inputTokens);
    // The total is exactly the sum of the stages, and reads as a decimal with at most 9 places.
    expect(view.totals.costUsd).toBe(totalNano / 1e9);
    expect(JSON.stringify(view.totals.costUsd)).toMatch(/^0\.\d{1,9}$/);
    expect(view.totals.inputTokens).toBe(
      view.stages.analysis.usage!.inputTokens + view.stages.factcheck.usage!.inputTokens + view.stages.synthesis.usage!.inputTokens,
    );

    const events = await eventsPromise;
    expect(events.map((e) => `${e.event}${e.data.stage && e.event.startsWith("stage") ? `:${String(e.data.stage)}` : ""}`)).toEqual([
      "research.queued",
      "stage.started:analysis",
      "stage.completed:analysis",
      "stage.started:factcheck",
      "stage.completed:factcheck",
      "stage.started:synthesis",
      "stage.completed:synthesis",
      "research.completed",
    ]);
  });

  it("ends a research as failed, naming the stage and reason, when a stage's model keeps failing", async () => {
    const { body } = await api.submit({ query: "Compare grid storage options [[sim:fault=500;model=gemini-2.5-flash]]" });
    const view = await api.waitForFinal(body.id);
    expect(view.status).toBe("failed");
    expect(view.error).toMatchObject({ stage: "factcheck", type: "http_500" });
    expect(view.error!.message).toMatch(/gemini-2\.5-flash/);
    expect(view.stages.factcheck.attempts).toBe(3);
    expect(view.stages.analysis.status).toBe("completed");
    expect(view.stages.synthesis.status).toBe("pending");
    expect(view.partialResult?.analysis?.length).toBeGreaterThan(0);
  });

  it("fails at once, without retries, when the provider rejects the API key", async () => {
    const before = await simulatorStats(stack.simulatorUrl!);
    const { body } = await api.submit({ query: "Any topic [[sim:fault=401;model=gpt-4.1]]" });
    const view = await api.waitForFinal(body.id);
    const after = await simulatorStats(stack.simulatorUrl!);

    expect(view.status).toBe("failed");
    expect(view.error).toMatchObject({ stage: "analysis", type: "provider_auth" });
    expect(view.error!.message).toMatch(/Set LLM_API_KEY/);
    expect(view.error!.message).not.toMatch(/sk-simulator/);
    expect(view.stages.analysis.attempts).toBe(1);
    expect((after.byModel["gpt-4.1"] ?? 0) - (before.byModel["gpt-4.1"] ?? 0)).toBe(1);
  });

  it("splits one queue between two worker processes without processing any job twice", async () => {
    const workers = stack.byService("analysis-worker");
    expect(workers).toHaveLength(2);
    const before = await Promise.all(workers.map((w) => workerCompleted(w.port)));
    const simBefore = await simulatorStats(stack.simulatorUrl!);

    const ids = await Promise.all(
      Array.from({ length: 24 }, async (_, i) => (await api.submit({ query: `Parallel question number ${i}` })).body.id),
    );
    const views = await Promise.all(ids.map((id) => api.waitForFinal(id, 60_000)));
    const after = await Promise.all(workers.map((w) => workerCompleted(w.port)));
    const simAfter = await simulatorStats(stack.simulatorUrl!);

    expect(views.every((v) => v.status === "completed")).toBe(true);
    expect(views.every((v) => v.stages.analysis.attempts === 1)).toBe(true);
    const perWorker = after.map((a, i) => a - before[i]!);
    expect(perWorker.reduce((a, b) => a + b, 0)).toBe(24);
    expect(perWorker.every((n) => n > 0)).toBe(true);
    // One model call per stage per research: nothing ran twice.
    for (const model of ["gpt-4.1", "gemini-2.5-flash", "deepseek-v3.2"]) {
      expect((simAfter.byModel[model] ?? 0) - (simBefore.byModel[model] ?? 0)).toBe(24);
    }
  });

  it("cancel stops a research before its next stage", async () => {
    const simBefore = await simulatorStats(stack.simulatorUrl!);
    const { body } = await api.submit({ query: "Slow one", options: { models: { analysis: "slow-model" } } });
    await waitFor(async () => (await api.get(body.id)).stages.analysis.status === "running", { what: "analysis to start" });

    const cancelled = await api.cancel(body.id);
    expect(cancelled.status).toBe(200);
    expect(cancelled.body.status).toBe("cancelled");
    expect(cancelled.body.stages.analysis.status).toBe("cancelled");

    // The in-flight model call finishes (~1.5 s) and is recorded on the cancelled stage; nothing after it runs.
    const view = await waitFor(
      async () => {
        const v = await api.get(body.id);
        return v.stages.analysis.usage ? v : undefined;
      },
      { what: "the cancelled analysis call to be recorded" },
    );
    const simAfter = await simulatorStats(stack.simulatorUrl!);
    expect(view.status).toBe("cancelled");
    // slow-model is not in the price table: its tokens count, its cost is unknown rather than $0.
    expect(view.stages.analysis).toMatchObject({ status: "cancelled", model: "slow-model", costUsd: null });
    expect(view.totals.unpricedModels).toEqual(["slow-model"]);
    expect(view.stages.factcheck.status).toBe("skipped");
    expect(view.stages.synthesis.status).toBe("skipped");
    expect((simAfter.byModel["gemini-2.5-flash"] ?? 0) - (simBefore.byModel["gemini-2.5-flash"] ?? 0)).toBe(0);
    expect(await api.cancel(body.id)).toMatchObject({ status: 409 });
  });
});
