import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { addUsd, loadPriceTable, roundMs, roundUsd, sumUsd, toNanoUsd } from "@tracelane/pricing";

const table = loadPriceTable();

describe("price table", () => {
  it("prices the product's default models at their published per-1M list prices", () => {
    // 1,000 input + 500 output tokens, computed by hand: tokens x USD / 1,000,000.
    expect(table.cost("gpt-4.1", { inputTokens: 1000, outputTokens: 500 }).costUsd).toBeCloseTo(0.002 + 0.004, 12);
    expect(table.cost("gemini-2.5-flash", { inputTokens: 1000, outputTokens: 500 }).costUsd).toBeCloseTo(0.0003 + 0.00125, 12);
    expect(table.cost("deepseek-v3.2", { inputTokens: 1000, outputTokens: 500 }).costUsd).toBeCloseTo(0.00028 + 0.00021, 12);
    expect(table.cost("claude-sonnet-4.5", { inputTokens: 1000, outputTokens: 500 }).costUsd).toBeCloseTo(0.003 + 0.0075, 12);
  });

  it("divides by one million per token, not one thousand", () => {
    expect(table.cost("gpt-4.1", { inputTokens: 1_000_000, outputTokens: 0 }).costUsd).toBeCloseTo(2.0, 12);
  });

  it("matches aliases, provider prefixes and dated releases", () => {
    expect(table.lookup("openai/gpt-4.1")?.model).toBe("gpt-4.1");
    expect(table.lookup("gpt-4.1-2025-04-14")?.model).toBe("gpt-4.1");
    expect(table.lookup("deepseek-chat")?.model).toBe("deepseek-v3.2");
    expect(table.lookup("models/gemini-2.5-flash")?.model).toBe("gemini-2.5-flash");
    expect(table.lookup("GPT-4.1")?.model).toBe("gpt-4.1");
  });

  it("marks an unknown model unpriced with a null cost instead of $0", () => {
    const cost = table.cost("my-finetune-7b", { inputTokens: 100, outputTokens: 100 });
    expect(cost).toEqual({ priced: false, costUsd: null, model: "my-finetune-7b", reason: "unpriced_model" });
  });

  it("charges cached input tokens at the cached rate", () => {
    const cost = table.cost("gpt-4.1", { inputTokens: 1000, outputTokens: 0, cachedInputTokens: 400 });
    expect(cost.costUsd).toBeCloseTo((600 * 2.0 + 400 * 0.5) / 1_000_000, 12);
  });

  it("every entry names its source and date", () => {
    for (const entry of table.entries) {
      expect(entry.source.length).toBeGreaterThan(0);
      expect(entry.asOf).toMatch(/^\d{4}-\d{2}-\d{2}$/);
    }
  });

  it("loads a replacement table from a file and rejects a malformed one with the field path", () => {
    const dir = mkdtempSync(path.join(tmpdir(), "prices-"));
    const good = path.join(dir, "good.json");
    writeFileSync(
      good,
      JSON.stringify({
        models: [{ model: "house-model", provider: "me", inputPer1M: 1, outputPer1M: 2, source: "contract", asOf: "2026-01-01" }],
      }),
    );
    const custom = loadPriceTable(good);
    expect(custom.cost("house-model", { inputTokens: 1_000_000, outputTokens: 1_000_000 }).costUsd).toBeCloseTo(3, 12);
    expect(custom.lookup("gpt-4.1")).toBeUndefined();

    const bad = path.join(dir, "bad.json");
    writeFileSync(
      bad,
      JSON.stringify({ models: [{ model: "x", provider: "me", inputPer1M: "cheap", outputPer1M: 2, source: "s", asOf: "2026-01-01" }] }),
    );
    expect(() => loadPriceTable(bad)).toThrow(/models\.0\.inputPer1M/);
  });
});

describe("model table", () => {
  it("knows the context window of the default models", () => {
    expect(table.lookup("gpt-4.1")?.contextWindow).toBe(1_047_576);
    expect(table.lookup("deepseek-v3.2")?.contextWindow).toBe(128_000);
  });
});

describe("money", () => {
  it("prices a call to the nano-dollar, so JSON shows the decimal and not a float artefact", () => {
    // Computed in binary floats, 333 x $2/1M + 1 x $8/1M prints as 0.0006739999999999999.
    expect(JSON.stringify(table.cost("gpt-4.1", { inputTokens: 333, outputTokens: 1 }).costUsd)).toBe("0.000674");
    expect(JSON.stringify(table.cost("deepseek-v3.2", { inputTokens: 1234, outputTokens: 1613 }).costUsd)).toBe("0.00102298");
  });

  it("adds nano-dollars, so a total equals the sum of its parts exactly", () => {
    const parts = [0.1, 0.2, 0.000000001, 0.00102298];
    expect(0.1 + 0.2).not.toBe(0.3);
    expect(sumUsd(parts)).toBe(0.301022981);
    expect(addUsd(0.1, 0.2)).toBe(0.3);
    expect(roundUsd(0.0010234999999999999)).toBe(0.0010235);
    expect(toNanoUsd(0.0010235)).toBe(1_023_500);
  });

  it("rounds durations to 0.1 ms", () => {
    expect(roundMs(12.3456)).toBe(12.3);
    expect(roundMs(0.05)).toBe(0.1);
    expect(JSON.stringify(roundMs(1764000000123.457))).toBe("1764000000123.5");
  });
});
