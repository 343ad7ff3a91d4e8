import { describe, expect, it } from "vitest";
import { jaegerTraceUrl } from "../src/jaeger.js";
import { anomalyMember, parseAnomalyMember, traceKeys } from "../src/keys.js";
import { aggregateCostStats, percentile } from "../src/stats.js";
import type { CallStat, TraceSummary } from "../src/types.js";

const call = (stage: string, model: string, durationMs: number, costUsd: number | null, tokens: number, error = false): CallStat => ({
  spanId: "s",
  stage,
  model,
  durationMs,
  inputTokens: tokens,
  outputTokens: 0,
  costUsd,
  error,
});
const summary = (calls: CallStat[]) => ({ calls }) as unknown as TraceSummary;

describe("percentile", () => {
  it("uses the nearest rank", () => {
    const values = Array.from({ length: 20 }, (_, i) => i + 1);
    expect(percentile(values, 50)).toBe(10);
    expect(percentile(values, 95)).toBe(19);
    expect(percentile([5], 95)).toBe(5);
    expect(percentile([], 50)).toBeNull();
  });
});

describe("aggregateCostStats", () => {
  it("computes calls, cost and token shares, latency percentiles and error rates per stage and model", () => {
    const stats = aggregateCostStats(
      [
        summary([call("analysis", "a", 100, 0.3, 300), call("factcheck", "b", 300, 0.1, 100, true)]),
        summary([call("analysis", "a", 200, 0.6, 600), call("factcheck", "x", 50, null, 0)]),
      ],
      { since: 0, until: 1 },
    );
    expect(stats).toMatchObject({ traces: 2, calls: 4, unpricedCalls: 1, inputTokens: 1_000 });
    expect(stats.costUsd).toBeCloseTo(1.0, 12);
    expect(stats.byStage.analysis).toMatchObject({
      calls: 2,
      errors: 0,
      errorRate: 0,
      tokens: 900,
      tokenShare: 0.9,
      latencyMs: { p50: 100, p95: 200 },
    });
    expect(stats.byStage.analysis!.costShare).toBeCloseTo(0.9, 12);
    expect(stats.byStage.factcheck).toMatchObject({ calls: 2, errors: 1, errorRate: 0.5, unpricedCalls: 1 });
    expect(Object.keys(stats.byModel)).toEqual(["a", "b", "x"]); // most expensive first
  });

  it("splits each group's cost into retry spend (calls of failed attempts) and useful spend, adding up exactly", () => {
    const wasted = { ...call("analysis", "a", 100, 0.1, 10), failedAttempt: true };
    const stats = aggregateCostStats(
      [
        summary([
          wasted,
          call("analysis", "a", 100, 0.2, 10),
          call("factcheck", "b", 50, 0.3, 10),
          call("factcheck", "b", 50, null, 0, true),
        ]),
      ],
      { since: 0, until: 1 },
    );
    expect(stats).toMatchObject({ costUsd: 0.6, retryCostUsd: 0.1, usefulCostUsd: 0.5 });
    expect(stats.byStage.analysis).toMatchObject({ costUsd: 0.3, retryCostUsd: 0.1, usefulCostUsd: 0.2 });
    expect(stats.byModel.b).toMatchObject({ costUsd: 0.3, retryCostUsd: 0, usefulCostUsd: 0.3 });
    // A summary stored before failedAttempt existed: a failed call counts as retry spend.
    const old = aggregateCostStats([summary([call("analysis", "a", 1, 0.25, 1, true)])], { since: 0, until: 1 });
    expect(old).toMatchObject({ retryCostUsd: 0.25, usefulCostUsd: 0 });
  });
});

describe("keys", () => {
  it("keeps every key under the prefix and URL-encodes model names", () => {
    const k = traceKeys("p:").of("abc");
    expect(k.spans).toBe(`${k.base}t:abc:spans`);
    expect(k.base).toMatch(/^p:\{t\d+(\.\d+)?\}:$/);
    expect(k.idxModel("openai/gpt 4")).toBe(`${k.base}idx:model:openai%2Fgpt%204`);
    expect(parseAnomalyMember(anomalyMember("t1", "", "trace_cost_over_budget"))).toEqual({
      traceId: "t1",
      spanId: "",
      type: "trace_cost_over_budget",
    });
  });
  it("builds Jaeger links without double slashes", () => {
    expect(jaegerTraceUrl("http://localhost:16686/", "abc")).toBe("http://localhost:16686/trace/abc");
  });
});
