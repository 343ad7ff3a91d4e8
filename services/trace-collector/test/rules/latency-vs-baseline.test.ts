import { describe, expect, it } from "vitest";
import { defaultsOf } from "../../src/anomalies/registry.js";
import { latencyVsBaseline } from "../../src/anomalies/rules/latency-vs-baseline.js";
import { call } from "./calls.js";

const settings = defaultsOf(latencyVsBaseline);

describe("latency_vs_baseline", () => {
  it("stays silent below the minimum sample count, or without a baseline", () => {
    expect(latencyVsBaseline.evaluate(call({ latencyMs: 10_000 }), settings, { baseline: { p95: 100, samples: 19 } })).toBeUndefined();
    expect(latencyVsBaseline.evaluate(call({ latencyMs: 10_000 }), settings, {})).toBeUndefined();
  });
  it("flags a call at k x p95 and not just below it", () => {
    expect(latencyVsBaseline.evaluate(call({ latencyMs: 300 }), settings, { baseline: { p95: 100, samples: 20 } })).toMatchObject({
      threshold: 300,
      value: 300,
    });
    expect(latencyVsBaseline.evaluate(call({ latencyMs: 299 }), settings, { baseline: { p95: 100, samples: 20 } })).toBeUndefined();
  });
  it("does not judge a failed call against the model's answers", () => {
    const failed = call({ attempts: [{ error: "AbortError", ms: 1_000 }] });
    expect(latencyVsBaseline.evaluate(failed, settings, { baseline: { p95: 100, samples: 20 } })).toBeUndefined();
  });
});
