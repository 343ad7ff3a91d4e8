import { createTraceReader, type TraceFilter } from "@tracelane/trace-store";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { decodeOtlpJson } from "../src/collector.js";
import { pipelineTrace, toOtlpJson, type StageSpec } from "../src/testing/synthetic.js";
import { cleanup, connect, testAssembler, uniquePrefix } from "./support.js";

const redis = connect(inject("redisUrl"));
const prefix = uniquePrefix("queries");
const reader = createTraceReader(redis, { prefix });
// An hour ago, on a whole second: the collector refuses spans dated outside a week before now.
const base = Math.floor(Date.now() / 1000) * 1000 - 3_600_000;

const stage = (over: Partial<StageSpec>): StageSpec => ({
  stage: "analysis",
  model: "gpt-4.1",
  inputTokens: 100,
  outputTokens: 100,
  latencyMs: 100,
  ...over,
});

/** Six traces, one property each, started one second apart. */
const cases = {
  plain: [stage({})],
  failed: [stage({ model: "gpt-4.1-mini", error: "ProviderDown" })],
  expensive: [stage({ inputTokens: 40_000, outputTokens: 5_000 })], // $0.08 + $0.04 = $0.12
  slow: [stage({ model: "gemini-2.5-flash", latencyMs: 31_000 })],
  retried: [stage({ model: "gpt-4.1-nano", resends: 1 }), stage({ stage: "factcheck", model: "gpt-4.1-mini" })],
  unpriced: [stage({ model: "acme-llm-9" })],
} satisfies Record<string, StageSpec[]>;
type Case = keyof typeof cases;
const ids = {} as Record<Case, string>;

beforeAll(async () => {
  const assembler = testAssembler(redis, prefix);
  let i = 0;
  for (const [name, stages] of Object.entries(cases) as [Case, StageSpec[]][]) {
    const spans = pipelineTrace({ startMs: base + ++i * 1_000, stages });
    ids[name] = spans[0]!.traceId;
    await assembler.ingest(decodeOtlpJson(toOtlpJson(spans)).spans);
  }
});
afterAll(async () => {
  await cleanup(redis, prefix);
  await redis.quit();
});

const names = async (filter: TraceFilter) => {
  const page = await reader.listTraces(filter);
  const byId = Object.fromEntries(Object.entries(ids).map(([k, v]) => [v, k]));
  return page.traces.map((t) => byId[t.traceId]);
};

describe("listTraces filters", () => {
  it("lists every trace newest first without a filter", async () => {
    expect(await names({})).toEqual(["unpriced", "retried", "slow", "expensive", "failed", "plain"]);
  });
  it("filters by start time (since/until inclusive)", async () => {
    expect(await names({ since: base + 3_000 })).toEqual(["unpriced", "retried", "slow", "expensive"]);
    expect(await names({ until: base + 2_000 })).toEqual(["failed", "plain"]);
    expect(await names({ since: base + 2_000, until: base + 4_000 })).toEqual(["slow", "expensive", "failed"]);
  });
  it("filters by minimum cost", async () => {
    expect(await names({ minCostUsd: 0.1 })).toEqual(["expensive"]);
  });
  it("filters by minimum duration", async () => {
    expect(await names({ minDurationMs: 30_000 })).toEqual(["slow"]);
  });
  it("filters by status", async () => {
    expect(await names({ status: "error" })).toEqual(["failed"]);
    expect(await names({ status: "ok" })).toEqual(["unpriced", "retried", "slow", "expensive", "plain"]);
  });
  it("filters by model", async () => {
    expect(await names({ model: "gpt-4.1" })).toEqual(["expensive", "plain"]);
    expect(await names({ model: "gpt-4.1-mini" })).toEqual(["retried", "failed"]);
  });
  it("filters by anomaly type", async () => {
    expect(await names({ anomaly: "error" })).toEqual(["failed"]);
    expect(await names({ anomaly: "high_cost" })).toEqual(["expensive"]);
    expect(await names({ anomaly: "high_tokens" })).toEqual(["expensive"]);
    expect(await names({ anomaly: "trace_duration_over_slo" })).toEqual(["slow"]);
    expect(await names({ anomaly: "high_latency" })).toEqual(["slow"]);
    expect(await names({ anomaly: "retries" })).toEqual(["retried"]);
    expect(await names({ anomaly: "unpriced_model" })).toEqual(["unpriced"]);
    expect(await names({ anomaly: "trace_cost_over_budget" })).toEqual([]);
  });
  it("combines filters", async () => {
    expect(await names({ model: "gpt-4.1-mini", status: "ok" })).toEqual(["retried"]);
    expect(await names({ anomaly: "error", since: base + 3_000 })).toEqual([]);
    expect(await names({ model: "gpt-4.1", minCostUsd: 0.002, until: base + 5_000 })).toEqual(["expensive"]);
  });
  it("sorts by cost or duration, most first", async () => {
    expect((await names({ sort: "cost" }))[0]).toBe("expensive");
    expect(await names({ sort: "duration", minDurationMs: 1_000 })).toEqual(["slow"]);
    expect(await names({ sort: "cost", minCostUsd: 0.0005, status: "ok" })).toEqual(["expensive", "plain"]);
  });
  it("pages with a cursor through every trace exactly once", async () => {
    const seen: (string | undefined)[] = [];
    let cursor: string | undefined;
    do {
      const page = await reader.listTraces({ limit: 4, ...(cursor ? { cursor } : {}) });
      seen.push(...page.traces.map((t) => t.traceId));
      cursor = page.nextCursor;
    } while (cursor);
    expect(seen).toEqual(["unpriced", "retried", "slow", "expensive", "failed", "plain"].map((n) => ids[n as Case]));
  });
  it("rejects a cursor from another sort order", async () => {
    const { nextCursor } = await reader.listTraces({ limit: 1 });
    await expect(reader.listTraces({ sort: "cost", cursor: nextCursor! })).rejects.toThrow(/cursor/);
  });
  it("returns each summary with its anomaly types", async () => {
    const [expensive] = (await reader.listTraces({ minCostUsd: 0.1 })).traces;
    expect(expensive!.anomalyTypes).toEqual(["high_tokens", "high_cost"]);
  });
});

describe("anomalies and costs", () => {
  it("lists anomalies by type, newest first", async () => {
    const all = await reader.listAnomalies({});
    expect(all).toHaveLength(7);
    const retries = await reader.listAnomalies({ type: "retries" });
    expect(retries.map((a) => a.traceId)).toEqual([ids.retried]);
    expect(retries[0]).toMatchObject({ stage: "analysis", recommendation: expect.any(String) });
    expect(await reader.listAnomalies({ since: Date.now() + 60_000 })).toEqual([]);
    expect(await reader.listAnomalies({ limit: 2 })).toHaveLength(2);
  });

  it("computes cost statistics per stage and model that match a hand computation", async () => {
    const stats = await reader.costStats({ since: base, until: base + 10_000 });
    // gpt-4.1: plain 100 in/100 out ($0.0002 + $0.0008) + expensive 40k/5k ($0.08 + $0.04)
    expect(stats.byModel["gpt-4.1"]!.costUsd).toBeCloseTo(0.001 + 0.12, 12);
    expect(stats.byModel["gpt-4.1"]!.calls).toBe(2);
    expect(stats.byModel["acme-llm-9"]).toMatchObject({ calls: 1, unpricedCalls: 1, costUsd: 0 });
    expect(stats.byModel["gpt-4.1-mini"]).toMatchObject({ calls: 2, errors: 1, errorRate: 0.5 });
    const total = Object.values(stats.byModel).reduce((s, m) => s + m.costUsd, 0);
    expect(stats.costUsd).toBeCloseTo(total, 12);
    expect(Object.values(stats.byModel).reduce((s, m) => s + m.costShare, 0)).toBeCloseTo(1, 9);
    expect(Object.values(stats.byStage).reduce((s, m) => s + m.tokenShare, 0)).toBeCloseTo(1, 9);
    expect(stats.byStage.factcheck!.calls).toBe(1);
    expect(stats.byStage.analysis!.latencyMs.p50).toBe(100);
    expect(stats.byStage.analysis!.latencyMs.p95).toBe(31_000);
    expect(stats.traces).toBe(6);
  });

  it("renders a replay: one line per span, indented by depth, errors under their span", async () => {
    const detail = await reader.getTrace(ids.failed);
    const text = reader.renderReplay(detail!);
    const lines = text.trimEnd().split("\n");
    expect(lines[0]).toMatch(new RegExp(`^trace ${ids.failed}  POST /v1/research  error`));
    expect(lines[1]).toMatch(/^✓ POST \/v1\/research {2}6 ms/);
    expect(lines[2]).toMatch(/^ {2}✓ publish research-analysis/);
    expect(lines[3]).toMatch(/^ {4}✗ process research-analysis .*\[analysis\].*queue wait 20 ms/);
    expect(lines).toContainEqual(
      expect.stringMatching(/^ {6}✗ chat gpt-4\.1-mini {2}100 ms {2}\[analysis\] {2}gpt-4\.1-mini {2}tokens in 0 \/ out 0 {2}\$0\.000000/),
    );
    expect(lines).toContainEqual(expect.stringMatching(/^ {10}! ProviderDown: ProviderDown from provider/));
  });
});
