import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadPriceTable } from "@tracelane/pricing";
import { batch } from "@tracelane/runtime";
import { queueRecordSamples, traceKeys, type StageSample, type TraceSamples } from "@tracelane/trace-store";
import { estimateResearch } from "../src/forecast.js";
import { analysisCounts, postResearch, startApi, uid, type TestApi } from "./helpers.js";

const prices = loadPriceTable();
const sample = (s: Partial<StageSample>): StageSample => ({
  calls: 1,
  inputTokens: 0,
  outputTokens: 0,
  cachedInputTokens: 0,
  queryChars: 0,
  ...s,
});
const K = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10];

/**
 * Ten past researches per stage (newest first in Redis; order does not matter to a percentile):
 *   analysis  gpt-4.1           510 input (of which a 40-character question, 10 tokens), 100·k output
 *   factcheck gemini-2.5-flash  k claims: k calls, 1000·k input, 100·k output
 *   synthesis deepseek-v3.2     2000 input, 500 output
 * For an 80-character question (20 tokens) at list prices ($2/$8, $0.30/$2.50, $0.28/$0.42 per 1M):
 *   analysis  520·2e-6 + 100k·8e-6  -> p50 (k=5) 0.00504, p95 (k=10) 0.00904
 *   factcheck 0.00055·k             -> p50 0.00275,        p95 0.0055
 *   synthesis 0.00077               -> p50 = p95 = 0.00077
 *   total                           -> p50 0.00856,        p95 0.01531
 */
const history = (): TraceSamples[] =>
  K.flatMap((k) => [
    { stage: "analysis", model: "gpt-4.1", sample: sample({ inputTokens: 510, outputTokens: 100 * k, queryChars: 40 }) },
    { stage: "factcheck", model: "gemini-2.5-flash", sample: sample({ calls: k, inputTokens: 1000 * k, outputTokens: 100 * k }) },
    { stage: "synthesis", model: "deepseek-v3.2", sample: sample({ inputTokens: 2000, outputTokens: 500 }) },
  ]);
const QUERY = "What does a heat pump cost to run in a cold winter, compared with a gas boiler?  ".slice(0, 80);
const P50 = 0.00856;
const P95 = 0.01531;

describe("estimateResearch (pure)", () => {
  const stagesOf = (samples: TraceSamples[]) =>
    ["analysis", "factcheck", "synthesis"].map((stage) => {
      const own = samples.filter((s) => s.stage === stage);
      return { stage, model: own[0]?.model ?? "gpt-4.1", samples: own.map((s) => s.sample) };
    });

  it("prices each past research, then takes the p50 and p95 of those costs per stage, and sums the stages", () => {
    expect(QUERY).toHaveLength(80);
    const estimate = estimateResearch({
      stages: stagesOf(history()),
      firstStage: "analysis",
      queryChars: QUERY.length,
      prices,
      minSamples: 5,
      window: 200,
    });
    expect(estimate).toMatchObject({ available: true, costUsd: P50, p50: P50, p95: P95 });
    if (!estimate.available) throw new Error("unreachable");
    expect(estimate.basis.queryTokens).toBe(20);
    expect(estimate.basis.stages).toEqual({
      analysis: { model: "gpt-4.1", samples: 10, p50: 0.00504, p95: 0.00904, input: "query+history" },
      factcheck: { model: "gemini-2.5-flash", samples: 10, p50: 0.00275, p95: 0.0055, input: "history" },
      synthesis: { model: "deepseek-v3.2", samples: 10, p50: 0.00077, p95: 0.00077, input: "history" },
    });
    expect(estimate.basis.method).toMatch(/characters \/ 4/);
  });

  it("says there is no estimate, naming each stage short of history, instead of guessing", () => {
    const few = history().filter((s) => s.stage !== "factcheck" || s.sample.calls <= 2);
    const estimate = estimateResearch({
      stages: stagesOf(few),
      firstStage: "analysis",
      queryChars: 10,
      prices,
      minSamples: 5,
      window: 200,
    });
    expect(estimate.available).toBe(false);
    if (estimate.available) throw new Error("unreachable");
    expect(estimate.reason).toMatch(/the factcheck stage has 2 completed researches on gemini-2\.5-flash \(at least 5 needed\)/);
    expect(estimate.basis.stages.factcheck).toMatchObject({ samples: 2, p50: null, p95: null });
    expect(estimate.basis.stages.analysis!.p50).toBe(0.005006); // (510 - 10 + 3) input · 2e-6 + 500 output · 8e-6
  });

  it("uses only the newest `window` samples, and names an unpriced model rather than pricing it at $0", () => {
    const stages = stagesOf(history());
    stages[2] = { stage: "synthesis", model: "no-such-model", samples: stages[2]!.samples };
    const estimate = estimateResearch({ stages, firstStage: "analysis", queryChars: 80, prices, minSamples: 2, window: 3 });
    if (estimate.available) throw new Error("an unpriced model has no estimate");
    expect(estimate.reason).toMatch(/no-such-model has no price in the api's price table/);
    expect(estimate.basis.stages.factcheck).toMatchObject({ samples: 3, p50: 0.0011, p95: 0.00165 }); // k = 1..3
  });
});

/**
 * The same ten researches with their trace ids, but research k's factcheck checked 11 - k claims: the stages no longer
 * rise together, so the research totals, 520·2e-6 + 100k·8e-6 + 0.00055·(11 - k) + 0.00077 = 0.00786 + 0.00025k,
 * have p50 (k=5) 0.00911 and p95 (k=10) 0.01036, while the per-stage rows and their sums are as above.
 */
const pairedHistory = (): TraceSamples[] =>
  K.flatMap((k) => [
    { stage: "analysis", model: "gpt-4.1", sample: sample({ inputTokens: 510, outputTokens: 100 * k, queryChars: 40, traceId: `t${k}` }) },
    {
      stage: "factcheck",
      model: "gemini-2.5-flash",
      sample: sample({ calls: 11 - k, inputTokens: 1000 * (11 - k), outputTokens: 100 * (11 - k), traceId: `t${k}` }),
    },
    { stage: "synthesis", model: "deepseek-v3.2", sample: sample({ inputTokens: 2000, outputTokens: 500, traceId: `t${k}` }) },
  ]);
const MODELS = { analysis: "gpt-4.1", factcheck: "gemini-2.5-flash", synthesis: "deepseek-v3.2" };
/** The stages as the forecaster reads them: each (stage, model this request runs) list. */
const listsOf = (samples: TraceSamples[], models: Record<string, string> = MODELS) =>
  Object.entries(models).map(([stage, model]) => ({
    stage,
    model,
    samples: samples.filter((s) => s.stage === stage && s.model === model).map((s) => s.sample),
  }));

describe("estimateResearch joins the stages per research (pure)", () => {
  const estimate = (samples: TraceSamples[], minSamples = 5) =>
    estimateResearch({ stages: listsOf(samples), firstStage: "analysis", queryChars: 80, prices, minSamples, window: 200 });

  it("prices each research found in every stage's history whole, and takes the p50 and p95 of those totals", () => {
    const e = estimate(pairedHistory());
    expect(e).toMatchObject({ available: true, costUsd: 0.00911, p50: 0.00911, p95: 0.01036 });
    expect(e.basis).toMatchObject({ pairing: "per_research", researches: 10 });
    expect(e.basis.stages.factcheck).toMatchObject({ samples: 10, p50: 0.00275, p95: 0.0055 }); // the stage's own, for reading
    expect(e.basis.method).toMatch(/joined on their trace id/);
  });

  it("leaves out a research missing a stage and one whose stage ran another model", () => {
    const samples = pairedHistory()
      .filter((s) => !(s.sample.traceId === "t9" && s.stage === "synthesis")) // its synthesis never recorded
      .map((s) => (s.sample.traceId === "t10" && s.stage === "factcheck" ? { ...s, model: "gpt-4.1-mini" } : s));
    const e = estimate(samples);
    // k = 1..8: 0.00786 + 0.00025k, p50 (rank 4) k=4, p95 (rank 8) k=8. With t9 or t10 priced, the p95 would be higher.
    expect(e).toMatchObject({ available: true, p50: 0.00886, p95: 0.00986, basis: { pairing: "per_research", researches: 8 } });
  });

  it("falls back to the sum of per-stage percentiles, saying so, when fewer than minSamples researches join", () => {
    // Every stage keeps at least 9 samples, but only 8 researches have all three.
    const samples = pairedHistory().filter(
      (s) => !(s.stage === "synthesis" && s.sample.traceId === "t1") && !(s.stage === "factcheck" && s.sample.traceId === "t2"),
    );
    const e = estimate(samples, 9);
    expect(e).toMatchObject({ available: true, p50: P50, p95: P95, basis: { pairing: "per_stage", researches: 8 } });
    expect(e.basis.method).toMatch(/summed over the stages/);
  });

  it("joins nothing on samples recorded without a trace id, and still estimates from them per stage", () => {
    expect(estimate(history())).toMatchObject({ available: true, p50: P50, p95: P95, basis: { pairing: "per_stage", researches: 0 } });
  });
});

describe("POST /v1/research with a cost estimate", () => {
  let api: TestApi;
  const tracePrefix = `test-api-${uid()}:traces`;
  beforeAll(async () => {
    api = await startApi({ env: { TRACELANE_TRACE_PREFIX: tracePrefix } });
  });
  afterAll(async () => {
    const keys = await api.redis.keys(`${tracePrefix}:*`);
    if (keys.length > 0) await api.redis.del(...keys);
    await api.close();
  });
  const seed = async () => {
    await batch(api.redis, (commands) => queueRecordSamples(commands, traceKeys(tracePrefix), history(), 200));
  };

  it("answers available: false before there is history, and creates the research", async () => {
    const res = await postResearch(api, { query: QUERY, options: { maxCostUsd: 0.000001 } });
    expect(res.status).toBe(202);
    expect(res.body.estimate).toMatchObject({ available: false, basis: { minSamples: 5, stages: { analysis: { samples: 0 } } } });
    expect(res.body.estimate.reason).toMatch(/the analysis stage has 0 completed researches on gpt-4\.1/);
  });

  it("answers the estimate with the research once the history has enough researches", async () => {
    await seed();
    const res = await postResearch(api, { query: QUERY });
    expect(res.status).toBe(202);
    expect(res.body.estimate).toMatchObject({ available: true, costUsd: P50, p50: P50, p95: P95 });
    expect(res.body.estimate.basis.stages.factcheck).toMatchObject({ model: "gemini-2.5-flash", samples: 10 });
  });

  it("joins the stages on the trace ids the history keeps", async () => {
    const prefix = `${tracePrefix}-paired`;
    const paired = await startApi({ env: { TRACELANE_TRACE_PREFIX: prefix } });
    try {
      await batch(paired.redis, (commands) => queueRecordSamples(commands, traceKeys(prefix), pairedHistory(), 200));
      const res = await postResearch(paired, { query: QUERY });
      expect(res.status).toBe(202);
      expect(res.body.estimate).toMatchObject({
        available: true,
        p50: 0.00911,
        p95: 0.01036,
        basis: { pairing: "per_research", researches: 10 },
      });
    } finally {
      const keys = await paired.redis.keys(`${prefix}:*`);
      if (keys.length > 0) await paired.redis.del(...keys);
      await paired.close();
    }
  });

  it("estimates the model a request names for a stage from that model's history", async () => {
    const res = await postResearch(api, { query: QUERY, options: { models: { synthesis: "gpt-4.1-mini" } } });
    expect(res.status).toBe(202);
    expect(res.body.estimate).toMatchObject({ available: false, basis: { stages: { synthesis: { model: "gpt-4.1-mini", samples: 0 } } } });
  });

  it("refuses maxCostUsd below the p50 with 422 estimate_over_budget, creating and enqueuing nothing, the Idempotency-Key unused", async () => {
    const before = await analysisCounts(api);
    const researchKeys = (await api.keys()).research.length;
    const key = `k-${uid()}`;
    const refused = await postResearch(api, { query: QUERY, options: { maxCostUsd: 0.005 } }, { "Idempotency-Key": key });
    expect(refused.status).toBe(422);
    expect(refused.body.error.code).toBe("estimate_over_budget");
    expect(refused.body.error.message).toContain("maxCostUsd is $0.005");
    expect(refused.body.error.message).toContain(`p50 $${P50}, p95 $${P95}`);
    expect(refused.body.error.message).toMatch(/Raise options\.maxCostUsd to at least \$0\.00856.*options\.allowOverBudgetEstimate: true/);
    expect(refused.body.error.details).toMatchObject({ maxCostUsd: 0.005, estimate: { available: true, p50: P50 } });
    expect(await analysisCounts(api)).toEqual(before);
    expect((await api.keys()).research.length).toBe(researchKeys);

    // The same request again is refused again (nothing to replay); with a budget above the p50 the key is free to use.
    expect((await postResearch(api, { query: QUERY, options: { maxCostUsd: 0.005 } }, { "Idempotency-Key": key })).status).toBe(422);
    const accepted = await postResearch(api, { query: QUERY, options: { maxCostUsd: P50 } }, { "Idempotency-Key": key });
    expect(accepted.status).toBe(202);
    expect(accepted.body.estimate.p50).toBe(P50);
    expect((await analysisCounts(api)).waiting).toBe((before.waiting ?? 0) + 1);
  });

  it("runs a research under budget when options.allowOverBudgetEstimate is true, keeping the option", async () => {
    const res = await postResearch(api, { query: QUERY, options: { maxCostUsd: 0.001, allowOverBudgetEstimate: true } });
    expect(res.status).toBe(202);
    expect(res.body.estimate).toMatchObject({ available: true, p50: P50 });
    const view = await api.store.get(res.body.id);
    expect(view?.options).toEqual({ maxCostUsd: 0.001, allowOverBudgetEstimate: true });
  });

  it("answers 400 naming options.allowOverBudgetEstimate when it is not a boolean", async () => {
    for (const value of ["yes", 1, null]) {
      const res = await postResearch(api, { query: QUERY, options: { maxCostUsd: 0.001, allowOverBudgetEstimate: value } });
      expect(res.status).toBe(400);
      expect(res.body.error.code).toBe("invalid_request");
      expect(res.body.error.details).toEqual([
        {
          path: "options.allowOverBudgetEstimate",
          message: `allowOverBudgetEstimate must be true or false (got ${JSON.stringify(value)})`,
        },
      ]);
    }
  });
});

describe("POST /v1/research with DEFAULT_MAX_COST_USD below the estimate", () => {
  it("refuses it the same way: the default is the research's budget", async () => {
    const tracePrefix = `test-api-${uid()}:traces`;
    const api = await startApi({ env: { TRACELANE_TRACE_PREFIX: tracePrefix, DEFAULT_MAX_COST_USD: "0.001" } });
    try {
      await batch(api.redis, (commands) => queueRecordSamples(commands, traceKeys(tracePrefix), history(), 200));
      const res = await postResearch(api, { query: QUERY });
      expect(res.status).toBe(422);
      expect(res.body.error.details.maxCostUsd).toBe(0.001);
    } finally {
      const keys = await api.redis.keys(`${tracePrefix}:*`);
      if (keys.length > 0) await api.redis.del(...keys);
      await api.close();
    }
  });
});
