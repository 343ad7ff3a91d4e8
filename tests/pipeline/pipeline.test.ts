import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { waitFor } from "@tracelane/testkit";
import { apiClient, type ApiClient } from "../support/api-client.js";
import { startPipeline } from "../support/pipeline-stack.js";
import { simulatorStats } from "../support/simulator.js";
import { modelCallsOfResearch } from "../support/spans.js";

// Published list prices, USD per 1M tokens (input, cached input, output), written out by hand
// so the test checks the price table rather than re-using it.
const LIST_PRICES: Record<string, [number, number, number]> = {
  "gpt-4.1": [2.0, 0.5, 8.0],
  "gemini-2.5-flash": [0.3, 0.03, 2.5],
  "deepseek-v3.2": [0.28, 0.028, 0.42],
};
/** To the nano-dollar: $X per 1M tokens is 1,000 X nano-dollars per token; cached input at its own rate. */
const nanoOf = (model: string, u: { inputTokens: number; outputTokens: number; cachedInputTokens?: number }) => {
  const [pin, pcached, pout] = LIST_PRICES[model]!;
  const cached = u.cachedInputTokens ?? 0;
  return Math.round((u.inputTokens - cached) * pin * 1_000 + cached * pcached * 1_000 + u.outputTokens * pout * 1_000);
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
      // The fact-check fans out: its row is the sum of its claims, each priced from its own tokens.
      const rows = stage === "factcheck" ? s.claims! : [s];
      if (stage === "factcheck") expect(rows.length).toBeGreaterThanOrEqual(1);
      let expectedNano = 0;
      for (const row of rows) {
        expect(row.costUsd).toBe(nanoOf(model, row.usage!) / 1e9);
        expectedNano += nanoOf(model, row.usage!);
      }
      expect(Math.round(s.costUsd! * 1e9)).toBe(expectedNano);
      // The model call happens between the stage's start and its checkpoint (ISO ms: 1 ms of slack)...
      const startedAt = Date.parse(s.startedAt!);
      expect(s.latencyMs).toBeGreaterThan(0);
      expect(s.latencyMs).toBeLessThanOrEqual(Date.parse(s.finishedAt!) - startedAt + 1);
      // ...and the job waited in its queue from its enqueue (after the previous checkpoint) to that start.
      expect(s.queueWaitMs).toBeLessThanOrEqual(startedAt - Date.parse(previousEnd));
      previousEnd = s.finishedAt!;
      totalNano += expectedNano;
    }
    // The report reads the analysis and the fact-check's notes, so its input outgrows the analysis'.
    expect(view.stages.synthesis.usage!.inputTokens).toBeGreaterThan(view.stages.analysis.usage!.inputTokens);
    // The total is exactly the sum of the stages, and reads as a decimal with at most 9 places.
    expect(view.totals.costUsd).toBe(totalNano / 1e9);
    expect(JSON.stringify(view.totals.costUsd)).toMatch(/^0\.\d{1,9}$/);
    expect(view.totals.inputTokens).toBe(
      view.stages.analysis.usage!.inputTokens + view.stages.factcheck.usage!.inputTokens + view.stages.synthesis.usage!.inputTokens,
    );

    const events = await eventsPromise;
    const claims = view.stages.factcheck.claims!;
    expect(
      events
        .filter((e) => e.event === "claim.completed")
        .map((e) => (e.data.data as { claim: number }).claim)
        .sort((a, b) => a - b),
    ).toEqual(claims.map((c) => c.index));
    // (Claim events and the report's streamed pieces are checked in claims-fan-out and streaming-synthesis.)
    const stageEvents = events.filter((e) => !e.event.startsWith("claim.") && !e.event.endsWith(".delta"));
    expect(stageEvents.map((e) => `${e.event}${e.data.stage && e.event.startsWith("stage") ? `:${String(e.data.stage)}` : ""}`)).toEqual([
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
    const { body } = await api.submit({ query: "Compare grid storage options [[sim:fault=500;model=deepseek-v3.2]]" });
    const view = await api.waitForFinal(body.id);
    expect(view.status).toBe("failed");
    expect(view.error).toMatchObject({ stage: "synthesis", type: "http_500" });
    expect(view.error!.message).toMatch(/deepseek-v3\.2/);
    expect(view.stages.synthesis.attempts).toBe(3);
    expect(view.stages.analysis.status).toBe("completed");
    expect(view.stages.factcheck.status).toBe("completed");
    expect(view.partialResult?.analysis?.length).toBeGreaterThan(0);
    expect(view.partialResult?.factCheck?.length).toBeGreaterThan(0);
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
    // One model call per stage per research, and the fact-check's per claim turn: nothing ran twice.
    const calls = (model: string) => (simAfter.byModel[model] ?? 0) - (simBefore.byModel[model] ?? 0);
    expect(calls("gpt-4.1")).toBe(24);
    expect(calls("deepseek-v3.2")).toBe(24);
    expect(calls("gemini-2.5-flash")).toBe(views.reduce((n, v) => n + modelCallsOfResearch(v) - 2, 0));
    expect(calls("gemini-2.5-flash")).toBeGreaterThanOrEqual(24);
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
