import { describe, expect, it } from "vitest";
import { ONE_OF_EACH } from "@tracelane/launcher";
import { apiClient } from "../support/api-client.js";
import { waitForCollectedTrace } from "../support/collected-traces.js";
import { usePipeline } from "../support/pipeline-stack.js";
import { spansOfResearch } from "../support/spans.js";
import { priceTableWithTinyModel } from "../support/price-tables.js";

// The api prices what-ifs with its TRACELANE_PRICE_TABLE: the built-in table plus a model whose window is too small
// for a claim check's call, so a swap to it is flagged instead of priced.
const tableFile = priceTableWithTinyModel("what-if");

// List prices, USD per 1M tokens (input, cached input, output), written out by hand.
const PRICES: Record<string, [number, number, number]> = {
  "gpt-4.1": [2.0, 0.5, 8.0],
  "gemini-2.5-flash": [0.3, 0.03, 2.5],
  "deepseek-v3.2": [0.28, 0.028, 0.42],
};
const nanoAt = (model: string, c: { inputTokens: number; outputTokens: number; cachedInputTokens: number }) => {
  const [pin, pcached, pout] = PRICES[model]!;
  return Math.round(
    (c.inputTokens - c.cachedInputTokens) * pin * 1_000 + c.cachedInputTokens * pcached * 1_000 + c.outputTokens * pout * 1_000,
  );
};

const run = usePipeline({
  replicas: ONE_OF_EACH,
  serviceEnv: { api: { TRACELANE_PRICE_TABLE: tableFile } },
  env: { COLLECTOR_BLOCK_MS: "100" },
});

interface WhatIf {
  actualCostUsd: number;
  whatIfCostUsd: number;
  savingUsd: number;
  savingShare: number;
  byStage: Record<
    string,
    { model: string; whatIfModel: string; calls: number; actualCostUsd: number; whatIfCostUsd: number; flaggedCalls: number }
  >;
  flags: Array<{ stage: string; spanId: string; reason: string; message: string }>;
  assumptions: string[];
}

describe("what-if model swaps over a real trace", () => {
  it("prices the recorded tokens of each swapped stage at the other model's rates, to the nano-dollar, and refuses what it cannot price", async () => {
    const base = run.stack.apiUrl!;
    const api = apiClient(base);
    const { body } = await api.submit({ query: "What does a heat pump cost to run in winter?" });
    const view = await api.waitForFinal(body.id, 60_000);
    expect(view.status).toBe("completed");
    const { spans } = await waitForCollectedTrace(base, body.traceId, spansOfResearch(view), 30_000);
    const calls = spans.filter((s) => s.call).map((s) => ({ ...s.call!, stage: s.stage!, spanId: s.spanId }));
    expect(calls.length).toBeGreaterThan(3);

    const get = async (query: string) => {
      const res = await fetch(`${base}/v1/traces/${body.traceId}/what-if?${query}`);
      return { status: res.status, body: (await res.json()) as WhatIf & { error?: { code: string; message: string } } };
    };

    // One stage swapped: its calls at the other model's rates, token by token; the others as recorded.
    for (const [query, swaps] of [
      ["swap=factcheck:deepseek-v3.2", { factcheck: "deepseek-v3.2" }],
      ["swap=factcheck:deepseek-v3.2&swap=synthesis:gpt-4.1", { factcheck: "deepseek-v3.2", synthesis: "gpt-4.1" }],
    ] as const) {
      const { status, body: w } = await get(query);
      expect(status, JSON.stringify(w)).toBe(200);
      let actual = 0;
      let swapped = 0;
      for (const stage of ["analysis", "factcheck", "synthesis"]) {
        const mine = calls.filter((c) => c.stage === stage);
        const stageActual = mine.reduce((n, c) => n + nanoAt(c.model, c), 0);
        const target = (swaps as Record<string, string>)[stage] ?? mine[0]!.model;
        const stageWhatIf = mine.reduce((n, c) => n + nanoAt(target, c), 0);
        expect(w.byStage[stage]).toMatchObject({ model: mine[0]!.model, whatIfModel: target, calls: mine.length, flaggedCalls: 0 });
        expect(Math.round(w.byStage[stage]!.actualCostUsd * 1e9)).toBe(stageActual);
        expect(Math.round(w.byStage[stage]!.whatIfCostUsd * 1e9)).toBe(stageWhatIf);
        actual += stageActual;
        swapped += stageWhatIf;
      }
      expect(Math.round(w.actualCostUsd * 1e9)).toBe(actual);
      expect(Math.round(w.whatIfCostUsd * 1e9)).toBe(swapped);
      expect(Math.round(w.savingUsd * 1e9)).toBe(actual - swapped);
      expect(w.savingShare).toBeCloseTo((actual - swapped) / actual, 9);
      expect(w.assumptions.length).toBeGreaterThan(0);
      expect(w.flags).toEqual([]);
    }
    // The actual side is what the research cost.
    expect((await get("swap=factcheck:deepseek-v3.2")).body.actualCostUsd).toBeCloseTo(view.totals.costUsd, 9);

    // A model whose window is smaller than a call: every such call flagged, named by span, and left out.
    const tiny = await get("swap=factcheck:tiny-model");
    expect(tiny.status).toBe(200);
    const factcheckCalls = calls.filter((c) => c.stage === "factcheck");
    const tooBig = factcheckCalls.filter((c) => c.inputTokens + c.outputTokens > 300);
    expect(tooBig.length).toBeGreaterThan(0);
    expect(tiny.body.byStage.factcheck!.flaggedCalls).toBe(tooBig.length);
    expect(tiny.body.flags.map((f) => f.spanId).sort()).toEqual(tooBig.map((c) => c.spanId).sort());
    // Left out of both sides: the fitting calls at tiny-model's rates ($0.10 in, $0.20 out; no cached rate: input).
    const fitting = factcheckCalls.filter((c) => !tooBig.includes(c));
    expect(Math.round(tiny.body.byStage.factcheck!.actualCostUsd * 1e9)).toBe(fitting.reduce((n, c) => n + nanoAt(c.model, c), 0));
    expect(Math.round(tiny.body.byStage.factcheck!.whatIfCostUsd * 1e9)).toBe(
      fitting.reduce((n, c) => n + Math.round(c.inputTokens * 100 + c.outputTokens * 200), 0),
    );
    for (const f of tiny.body.flags)
      expect(f).toMatchObject({ stage: "factcheck", reason: "context_window", message: expect.stringMatching(/context window is 300/) });

    // What cannot be priced is a 400 that says why.
    for (const [query, code, message] of [
      ["", "invalid_query", /needs at least one swap=<stage>:<model>/],
      ["swap=factcheck", "invalid_query", /is not a swap: expected swap=<stage>:<model>/],
      ["swap=review:gpt-4.1", "invalid_query", /not a stage of the pipeline/],
      ["swap=factcheck:gpt-4.1&swap=factcheck:deepseek-v3.2", "invalid_query", /swapped twice/],
      ["swap=factcheck:no-such-model", "unknown_model", /"no-such-model" is not in the price table/],
    ] as const) {
      const { status, body: err } = await get(query);
      expect(status, query).toBe(400);
      expect(err.error!.code, query).toBe(code);
      expect(err.error!.message, query).toMatch(message);
    }
  }, 90_000);
});
