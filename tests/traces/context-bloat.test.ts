import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { ONE_OF_EACH } from "@tracelane/launcher";
import type { Anomaly, StageTokenFlow } from "@tracelane/trace-store";
import { waitFor } from "@tracelane/testkit";
import { apiClient, type ApiClient } from "../support/api-client.js";
import { waitForCollectedTrace } from "../support/collected-traces.js";
import { startPipeline } from "../support/pipeline-stack.js";
import { modelCallsOfResearch, spansOfResearch } from "../support/spans.js";

/**
 * A real research through every process (api, the three stage workers, the llm-simulator, the trace-collector)
 * with the context_bloat factor set low on the collector: the anomaly and the token flow it judged, as the api
 * serves them.
 */

// Low enough that some stage after the first reads more than 0.2 × what it was handed (every stage reads its
// own instructions and the question on top): the rule must fire on an ordinary research.
const FACTOR = 0.2;
const PROMPT_TOKENS = 10;

let stack: Awaited<ReturnType<typeof startPipeline>>;
let api: ApiClient;

beforeAll(async () => {
  stack = await startPipeline(inject("redisUrl"), {
    replicas: ONE_OF_EACH,
    env: {
      TRACELANE_RULE_BLOAT_FACTOR: String(FACTOR),
      TRACELANE_RULE_BLOAT_PROMPT_TOKENS: String(PROMPT_TOKENS),
      COLLECTOR_BLOCK_MS: "100",
    },
  });
  api = apiClient(stack.apiUrl!);
}, 90_000);

afterAll(async () => {
  await stack?.stop();
});

const getJson = async <T>(path: string): Promise<T> => {
  const res = await fetch(`${stack.apiUrl}${path}`);
  expect(res.status, path).toBe(200);
  return (await res.json()) as T;
};

describe("context_bloat end to end", () => {
  it("flags a real research at a low factor, with the stage's numbers from the trace's token flow, listed by ?anomaly=context_bloat", async () => {
    const { body } = await api.submit({ query: "Do heat pumps work in cold climates like Norway?" });
    const view = await api.waitForFinal(body.id, 60_000);
    expect(view.status, JSON.stringify(view.error)).toBe("completed");
    const { body: trace } = await waitForCollectedTrace(stack.apiUrl!, body.traceId, spansOfResearch(view), 30_000);

    // The token flow: the pipeline's stages in order, each stage's sums as byStage has them, the fact-check's over its claims.
    const flow = trace.summary.tokenFlow!;
    expect(flow.map((s) => [s.stage, s.complete])).toEqual([
      ["analysis", true],
      ["factcheck", true],
      ["synthesis", true],
    ]);
    for (const s of flow) {
      const stage = trace.summary.byStage[s.stage]!;
      expect([s.calls, s.inputTokens, s.outputTokens], s.stage).toEqual([stage.calls, stage.inputTokens, stage.outputTokens]);
      expect(s.maxCallInputTokens).toBeLessThanOrEqual(s.inputTokens);
    }
    const [analysis, factcheck, synthesis] = flow as [StageTokenFlow, StageTokenFlow, StageTokenFlow];
    expect(factcheck.calls).toBe(modelCallsOfResearch(view) - 2);
    expect(factcheck.inputTokens).toBe(view.stages.factcheck.claims!.reduce((n, c) => n + c.usage!.inputTokens, 0));
    expect(factcheck.maxCallInputTokens).toBeLessThan(factcheck.inputTokens); // several claim calls, each read on its own
    expect(analysis.growth).toBeNull();
    expect(factcheck.growth).toBe(Math.round((factcheck.maxCallInputTokens / analysis.outputTokens) * 100) / 100);
    expect(synthesis.growth).toBe(Math.round((synthesis.maxCallInputTokens / factcheck.outputTokens) * 100) / 100);

    // The anomaly: one per trace, on a stage after the first (the one most over when it was first judged: once it and the
    // stages before it had all arrived), with that stage's largest call and factor × (the previous stage's output + prompt).
    const bloat = await waitFor(
      async () => (await getJson<{ anomalies: Anomaly[] }>(`/v1/traces/${body.traceId}`)).anomalies.find((a) => a.type === "context_bloat"),
      { timeoutMs: 10_000, intervalMs: 100, what: "the context_bloat anomaly on the trace" },
    );
    const at = flow.findIndex((s) => s.stage === bloat.stage);
    expect(at, bloat.stage).toBeGreaterThan(0);
    expect(bloat).toMatchObject({
      spanId: "",
      value: flow[at]!.maxCallInputTokens,
      threshold: expect.closeTo(FACTOR * (flow[at - 1]!.outputTokens + PROMPT_TOKENS), 6),
      unit: "tokens",
    });
    expect(bloat.recommendation).toMatch(/Trim or summarise the material handed over/);

    const listed = await getJson<{ traces: { traceId: string; anomalyTypes: string[] }[] }>("/v1/traces?anomaly=context_bloat&limit=100");
    expect(listed.traces.find((t) => t.traceId === body.traceId)?.anomalyTypes).toContain("context_bloat");
    // The research, its trace and the anomaly each have their own wait; on a loaded machine they add up past the default 60 s.
  }, 90_000);
});
