import { describe, expect, it } from "vitest";
import { defaultsOf } from "../../src/anomalies/registry.js";
import { highCost } from "../../src/anomalies/rules/high-cost.js";
import { call } from "./calls.js";

describe("high_cost", () => {
  const s = defaultsOf(highCost);
  it("flags $0.10 (even as a float sum) and not $0.0999, recommending a cheaper model", () => {
    expect(highCost.evaluate(call({ costUsd: 0.1 }), s, {})).toMatchObject({ value: 0.1, unit: "usd" });
    expect(highCost.evaluate(call({ costUsd: 0.07 + 0.03 - 1e-17 }), s, {})).toBeDefined();
    expect(highCost.evaluate(call({ costUsd: 0.0999 }), s, {})).toBeUndefined();
    expect(highCost.recommendation).toMatch(/cheaper model/i);
  });
  it("leaves an unpriced call to unpriced_model", () => {
    expect(highCost.evaluate(call({ costUsd: null }), s, {})).toBeUndefined();
  });
});
