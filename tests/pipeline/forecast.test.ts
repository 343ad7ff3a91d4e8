import { describe, expect, it } from "vitest";
import { ONE_OF_EACH } from "@tracelane/launcher";
import { RESEARCH_PIPELINE } from "@tracelane/pipeline";
import type { ResearchView } from "@tracelane/research-store";
import { percentile, readStageSamples, traceKeys } from "@tracelane/trace-store";
import { waitFor } from "@tracelane/testkit";
import { apiClient } from "../support/api-client.js";
import { usePipeline } from "../support/pipeline-stack.js";

// The whole product as OS processes (collector included) on the simulator at 0 ms latency, so 50 researches take seconds.
const run = usePipeline({
  replicas: ONE_OF_EACH,
  env: { COLLECTOR_BLOCK_MS: "100", COLLECTOR_FORECAST_SETTLE_MS: "1000", COLLECTOR_ASSEMBLY_INTERVAL_MS: "200" },
});

const RESEARCHES = 50;
/** Questions of one length (the first stage's input is estimated from the question's length). */
const question = (i: number) => `Question ${String(i).padStart(3, "0")}: how do tides shape the coastline over a century?`;

interface Estimate {
  available: boolean;
  reason?: string;
  costUsd?: number;
  p50?: number;
  p95?: number;
  basis: {
    pairing: string;
    researches: number;
    window: number;
    minSamples: number;
    stages: Record<string, { model: string; samples: number; p50: number | null; p95: number | null }>;
  };
}
type Created = { id: string; traceId: string; status: string; estimate?: Estimate };

const defaultModels = Object.fromEntries(RESEARCH_PIPELINE.stages.map((s) => [s.stage, s.defaultModel]));

describe("forecast at submit", () => {
  it("says there is no estimate before any history, then after 50 researches estimates within their observed p50-p95 band", async () => {
    const api = apiClient(run.stack.apiUrl!);
    const submit = async (body: unknown) => {
      const res = await api.submit(body);
      return { status: res.status, body: res.body as unknown as Created & { error?: { code: string; message: string } } };
    };

    const first = await submit({ query: question(0) });
    expect(first.status).toBe(202);
    expect(first.body.estimate?.available).toBe(false);
    expect(first.body.estimate?.reason).toMatch(/the analysis stage has 0 completed researches on gpt-4\.1 \(at least 5 needed\)/);

    const ids = [first.body.id];
    for (let i = 1; i < RESEARCHES; i += 10) {
      const batch = await Promise.all(Array.from({ length: Math.min(10, RESEARCHES - i) }, (_, j) => submit({ query: question(i + j) })));
      for (const r of batch) {
        expect(r.status, JSON.stringify(r.body)).toBe(202);
        ids.push(r.body.id);
      }
    }
    const views: ResearchView[] = [];
    for (const id of ids) views.push(await api.waitForFinal(id, 120_000));
    expect(views.map((v) => v.status)).toEqual(ids.map(() => "completed"));

    // The collector records each research once, after it settled: wait for all 50 in every stage's history.
    const keys = traceKeys(run.stack.prefixes.traces);
    await waitFor(
      async () => {
        const lengths = await Promise.all(RESEARCH_PIPELINE.names.map((s) => run.redis.llen(keys.forecast(s, defaultModels[s]!))));
        return lengths.every((n) => n === RESEARCHES) ? lengths : undefined;
      },
      { timeoutMs: 30_000, what: "50 researches in each stage's forecast history" },
    );

    const costs = views.map((v) => v.totals.costUsd);
    const observed = { p50: percentile(costs, 50)!, p95: percentile(costs, 95)! };
    const next = await submit({ query: question(RESEARCHES) });
    expect(next.status).toBe(202);
    const estimate = next.body.estimate!;
    expect(estimate.available, estimate.reason).toBe(true);
    for (const s of RESEARCH_PIPELINE.names)
      expect(estimate.basis.stages[s]).toMatchObject({ model: defaultModels[s], samples: RESEARCHES });
    expect(estimate.costUsd).toBe(estimate.p50);
    expect(estimate.p95!).toBeGreaterThanOrEqual(estimate.p50!);
    expect(estimate.basis).toMatchObject({ pairing: "per_research", researches: RESEARCHES });

    // The estimate's p50 lies in the band the 50 researches cost: [observed p50, observed p95]. It is the p50 of those
    // same 50 researches' totals, re-priced: every question has this one's length, so swapping in its tokens changes
    // no research's first-stage input. What can differ is rounding: a research's view adds each call's cost rounded
    // to the nano-dollar, the estimate prices a stage's summed tokens once, so a research's two totals differ by at
    // most 0.5 nano-dollar per call plus per stage, and a percentile moves no further than the totals under it.
    const calls = await readStageSamples(
      run.redis,
      keys,
      RESEARCH_PIPELINE.names.map((stage) => ({ stage, model: defaultModels[stage]! })),
    );
    const byTrace = new Map<string, number>();
    for (const list of calls) for (const s of list) byTrace.set(s.traceId!, (byTrace.get(s.traceId!) ?? 0) + s.calls + 1);
    expect(byTrace.size).toBe(RESEARCHES);
    const rounding = (Math.max(...byTrace.values()) * 0.5) / 1e9;
    const band = `observed p50 ${observed.p50}, p95 ${observed.p95}; estimate p50 ${estimate.p50}, p95 ${estimate.p95}; rounding ${rounding}`;
    console.log(`forecast: ${band}`);
    expect(estimate.p50!, band).toBeGreaterThanOrEqual(observed.p50 - rounding);
    expect(estimate.p50!, band).toBeLessThanOrEqual(observed.p95);
    // And so is its p95 (no longer a sum of per-stage p95s that errs high).
    expect(Math.abs(estimate.p95! - observed.p95), band).toBeLessThanOrEqual(rounding);

    // A budget below the estimate: 422 with both numbers, nothing created or enqueued.
    // (Once that research has finished, the queues are quiet: a refused request adds no job to any of them.)
    expect((await api.waitForFinal(next.body.id, 60_000)).status).toBe("completed");
    const keysUnder = async (prefix: string) => (await run.redis.keys(`${prefix}*`)).sort();
    const jobKeys = async () => (await keysUnder(`${run.stack.prefixes.queue}:`)).filter((k) => /-(analysis|factcheck|synthesis)$/.test(k));
    const queueKeysBefore = await jobKeys();
    const researchKeysBefore = await keysUnder(`${run.stack.prefixes.research}:`);
    const budget = Math.floor((estimate.p50! / 2) * 1e9) / 1e9;
    const refused = await submit({ query: question(RESEARCHES + 1), options: { maxCostUsd: budget } });
    expect(refused.status).toBe(422);
    expect(refused.body.error?.code).toBe("estimate_over_budget");
    expect(refused.body.error?.message).toContain(`maxCostUsd is $${budget}`);
    expect(refused.body.error?.message).toContain(`p50 $${estimate.p50}`);
    expect(await keysUnder(`${run.stack.prefixes.research}:`)).toEqual(researchKeysBefore);
    expect(await jobKeys()).toEqual(queueKeysBefore); // no job in any stage's queue

    // allowOverBudgetEstimate lets it through (and the budget gate stops it later, as before).
    const allowed = await submit({ query: question(RESEARCHES + 1), options: { maxCostUsd: budget, allowOverBudgetEstimate: true } });
    expect(allowed.status).toBe(202);
    expect((await api.waitForFinal(allowed.body.id, 60_000)).status).toMatch(/completed|failed/);

    // A bad type is a 400, not a silent default.
    const bad = await submit({ query: question(0), options: { maxCostUsd: budget, allowOverBudgetEstimate: "true" } });
    expect(bad.status).toBe(400);
    expect(bad.body.error?.message).toContain("options.allowOverBudgetEstimate: allowOverBudgetEstimate must be true or false");
  }, 180_000);
});
