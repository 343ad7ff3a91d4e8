import { describe, expect, it } from "vitest";
import { defaultsOf } from "../../src/anomalies/registry.js";
import { highTokens } from "../../src/anomalies/rules/high-tokens.js";
import { call } from "./calls.js";

describe("high_tokens", () => {
  it("flags 8000 tokens in+out and not 7999, recommending to trim or summarise", () => {
    const s = defaultsOf(highTokens);
    expect(highTokens.evaluate(call({ inputTokens: 6_000, outputTokens: 2_000 }), s, {})).toMatchObject({ value: 8_000, unit: "tokens" });
    expect(highTokens.evaluate(call({ inputTokens: 6_000, outputTokens: 1_999 }), s, {})).toBeUndefined();
    expect(highTokens.recommendation).toMatch(/truncate|summari/i);
  });
});
