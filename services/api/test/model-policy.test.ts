import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RESEARCH_PIPELINE } from "@tracelane/pipeline";
import { loadPriceTable } from "@tracelane/pricing";
import { postResearch, startApi, type TestApi } from "./helpers.js";

/** Every research record, event stream and index the api wrote, and the jobs of every stage queue. */
const written = async (api: TestApi) => {
  const { research } = await api.keys();
  const jobs = await Promise.all(
    api.queues.pipeline.names.map((stage) => api.queues.queue(stage).getJobCounts("waiting", "active", "delayed", "prioritized")),
  );
  return { research: research.sort(), jobs };
};

describe("options.models outside a stage's allowed models (default: its model, its fallback, every priced model)", () => {
  let api: TestApi;
  beforeAll(async () => {
    // The api reads each stage's model and fallback from the variables its worker reads.
    api = await startApi({ env: { FACTCHECK_MODEL: "house-model", FACTCHECK_FALLBACK_MODEL: "house-fallback" } });
  });
  afterAll(async () => {
    await api?.close();
  });

  it("answers 400 model_not_allowed naming the stage and the allowed models, and creates nothing", async () => {
    const before = await written(api);
    const res = await postResearch(api, { query: "q", options: { models: { analysis: "o1-pro" }, maxCostUsd: 0.000001 } });
    expect(res.status).toBe(400);
    const priced = loadPriceTable().entries.map((e) => e.model);
    expect(res.body.error).toMatchObject({
      code: "model_not_allowed",
      details: { stage: "analysis", model: "o1-pro" },
    });
    expect(res.body.error.details.allowed).toEqual([...new Set([RESEARCH_PIPELINE.stage("analysis").defaultModel, ...priced])]);
    expect(res.body.error.message).toMatch(/^Model "o1-pro" is not allowed for the analysis stage\. Allowed: gpt-4\.1, /);
    expect(res.body.error.message).toMatch(/ANALYSIS_ALLOWED_MODELS \(by default only priced models are allowed\)/);
    expect(await written(api)).toEqual(before);
    expect(before.jobs.every((counts) => Object.values(counts).every((n) => n === 0))).toBe(true);
  });

  it("accepts every priced model (by alias too), and the stage's configured model and fallback though they have no price", async () => {
    const ok = await postResearch(api, {
      query: "q",
      options: { models: { analysis: "openai/gpt-4.1-mini", factcheck: "house-fallback", synthesis: "claude-haiku-4.5" } },
    });
    expect(ok.status).toBe(202);
    expect((await postResearch(api, { query: "q", options: { models: { factcheck: "house-model" } } })).status).toBe(202);
    const refused = await postResearch(api, { query: "q", options: { models: { factcheck: "house-other" } } });
    expect(refused.status).toBe(400);
    expect(refused.body.error.details).toMatchObject({ stage: "factcheck", model: "house-other" });
    expect(refused.body.error.details.allowed.slice(0, 3)).toEqual(["house-model", "house-fallback", "gpt-4.1"]);
  });
});

describe("<STAGE>_ALLOWED_MODELS set by the operator", () => {
  let api: TestApi;
  beforeAll(async () => {
    api = await startApi({ env: { SYNTHESIS_ALLOWED_MODELS: " o1-pro , house-model " } });
  });
  afterAll(async () => {
    await api?.close();
  });

  it("allows exactly the listed models besides the stage's own, refusing priced ones it does not list", async () => {
    expect((await postResearch(api, { query: "q", options: { models: { synthesis: "house-model" } } })).status).toBe(202);
    expect((await postResearch(api, { query: "q", options: { models: { synthesis: "o1-pro" } } })).status).toBe(202);
    const refused = await postResearch(api, { query: "q", options: { models: { synthesis: "gpt-4.1" } } });
    expect(refused.status).toBe(400);
    expect(refused.body.error.details).toEqual({
      stage: "synthesis",
      model: "gpt-4.1",
      allowed: ["deepseek-v3.2", "o1-pro", "house-model"],
    });
    expect(refused.body.error.message).toBe(
      'Model "gpt-4.1" is not allowed for the synthesis stage. Allowed: deepseek-v3.2, o1-pro, house-model. ' +
        "Choose one of them, or ask the operator to add it to SYNTHESIS_ALLOWED_MODELS.",
    );
    // Other stages keep their default list.
    expect((await postResearch(api, { query: "q", options: { models: { analysis: "o1-pro" } } })).status).toBe(400);
  });
});

describe("DEFAULT_MAX_COST_USD", () => {
  let api: TestApi;
  beforeAll(async () => {
    api = await startApi({ env: { DEFAULT_MAX_COST_USD: "0.5" } });
  });
  afterAll(async () => {
    await api?.close();
  });

  it("is the budget of a research whose request sets none, shown in its status; a request's own maxCostUsd wins", async () => {
    const plain = await postResearch(api, { query: "q" });
    expect(plain.status).toBe(202);
    const status = await fetch(`${api.url}/v1/research/${plain.body.id}`);
    expect(((await status.json()) as { options: unknown }).options).toEqual({ maxCostUsd: 0.5 });

    const own = await postResearch(api, { query: "q", options: { maxCostUsd: 2 } });
    expect((await api.store.get(own.body.id))?.options).toEqual({ maxCostUsd: 2 });
  });

  it("rejects a value that is not a non-negative number at boot, naming the variable", async () => {
    await expect(startApi({ env: { DEFAULT_MAX_COST_USD: "-1" } })).rejects.toThrow(
      /DEFAULT_MAX_COST_USD: must be a number from 0 to 10000/,
    );
  });
});
