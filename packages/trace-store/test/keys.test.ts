import { describe, expect, it } from "vitest";
import { traceKeys } from "../src/keys.js";

describe("trace store keys", () => {
  it("names a model with a lone surrogate (a fuzzed span's) instead of throwing, and keeps real names apart", () => {
    const keys = traceKeys("p");
    expect(() => keys.baseline("gpt-\uD800")).not.toThrow();
    expect(keys.baseline("gpt-\uD800")).toBe(keys.baseline("gpt-\uFFFD"));
    expect(keys.idxModel("x\uDC00y")).toBe(`p:idx:model:${encodeURIComponent("x\uFFFDy")}`);
    // Well-formed names, astral characters included, are encoded as they are.
    expect(keys.baseline("model-😀")).toBe(`p:baseline:${encodeURIComponent("model-😀")}`);
    expect(keys.baseline("a:b c")).toBe("p:baseline:a%3Ab%20c");
  });
});
