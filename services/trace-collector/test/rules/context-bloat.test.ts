import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import type { StageTokenFlow, TraceSummary } from "@tracelane/trace-store";
import { describe, expect, it } from "vitest";
import { loadRules } from "../../src/anomalies/config.js";
import { defaultsOf } from "../../src/anomalies/registry.js";
import { contextBloat } from "../../src/anomalies/rules/context-bloat.js";

/** A stage of the token flow: `calls` calls whose largest read `maxIn`, writing `out` tokens in all. */
const step = (stage: string, maxIn: number, out: number, over: Partial<StageTokenFlow> = {}): StageTokenFlow => ({
  stage,
  calls: 1,
  inputTokens: maxIn,
  outputTokens: out,
  maxCallInputTokens: maxIn,
  growth: null,
  complete: true,
  ...over,
});
const summary = (...tokenFlow: StageTokenFlow[]) => ({ traceId: "t", tokenFlow }) as unknown as TraceSummary;
const defaults = defaultsOf(contextBloat);

const rulesFile = (json: unknown) => {
  const file = path.join(mkdtempSync(path.join(tmpdir(), "rules-")), "rules.json");
  writeFileSync(file, JSON.stringify(json));
  return file;
};

describe("context_bloat", () => {
  it("flags a stage whose largest call reads exactly 3 × (the previous stage's output + 1,000 prompt tokens), not one token less", () => {
    // 3 × (500 + 1,000) = 4,500
    expect(contextBloat.evaluate(summary(step("analysis", 800, 500), step("factcheck", 4_500, 90)), defaults)).toEqual({
      stage: "factcheck",
      value: 4_500,
      threshold: 4_500,
      unit: "tokens",
      message: "factcheck: its call read 4,500 input tokens, ≥ 3 × (500 output tokens of analysis + 1,000 prompt tokens) = 4,500",
    });
    expect(contextBloat.evaluate(summary(step("analysis", 800, 500), step("factcheck", 4_499, 90)), defaults)).toBeUndefined();
  });

  it("judges the largest call of a stage, not the sum over its calls", () => {
    const claims = step("factcheck", 4_499, 300, { calls: 8, inputTokens: 20_000 });
    expect(contextBloat.evaluate(summary(step("analysis", 800, 500), claims), defaults)).toBeUndefined();
    expect(contextBloat.evaluate(summary(step("analysis", 800, 500), { ...claims, maxCallInputTokens: 4_500 }), defaults)).toMatchObject({
      value: 4_500,
      message: expect.stringContaining("its largest of 8 calls read 4,500 input tokens"),
    });
  });

  it("takes the factor and prompt tokens from the rules file, and TRACELANE_RULE_BLOAT_FACTOR over the file", () => {
    const file = rulesFile({ bloat: { factor: 2.5, promptTokens: 200 } });
    const fromFile = loadRules(file, {}).settings.context_bloat;
    expect(fromFile).toEqual({ factor: 2.5, promptTokens: 200 });
    // 2.5 × (500 + 200) = 1,750
    const flow = (maxIn: number) => summary(step("analysis", 800, 500), step("synthesis", maxIn, 900));
    expect(contextBloat.evaluate(flow(1_750), fromFile as typeof defaults)).toMatchObject({ threshold: 1_750 });
    expect(contextBloat.evaluate(flow(1_749), fromFile as typeof defaults)).toBeUndefined();

    const fromEnv = loadRules(file, { TRACELANE_RULE_BLOAT_FACTOR: "4" }).settings.context_bloat;
    expect(fromEnv).toEqual({ factor: 4, promptTokens: 200 });
    // 4 × (500 + 200) = 2,800
    expect(contextBloat.evaluate(flow(2_800), fromEnv as typeof defaults)).toMatchObject({ threshold: 2_800 });
    expect(contextBloat.evaluate(flow(2_799), fromEnv as typeof defaults)).toBeUndefined();
    expect(() => loadRules(rulesFile({ bloat: { factor: 0 } }))).toThrow(/bloat\.factor/);
    expect(() => loadRules(undefined, { TRACELANE_RULE_BLOAT_FACTOR: "many" })).toThrow(/TRACELANE_RULE_BLOAT_FACTOR: .*got "many"/);
  });

  it("does not judge a stage while it or the previous stage is incomplete", () => {
    const bloated = step("synthesis", 50_000, 900);
    expect(contextBloat.evaluate(summary(step("factcheck", 800, 100, { complete: false }), bloated), defaults)).toBeUndefined();
    expect(contextBloat.evaluate(summary(step("factcheck", 800, 100), bloated), defaults)).toMatchObject({ stage: "synthesis" });
    // Nor while the stage itself is: its largest call so far may not be its largest.
    expect(contextBloat.evaluate(summary(step("factcheck", 800, 100), { ...bloated, complete: false }), defaults)).toBeUndefined();
  });

  it("measures against the stage before one without calls, once that one has arrived", () => {
    const analysis = step("analysis", 800, 500);
    const synthesis = step("synthesis", 4_500, 900);
    const noClaims = step("factcheck", 0, 0, { calls: 0, inputTokens: 0 });
    expect(contextBloat.evaluate(summary(analysis, noClaims, synthesis), defaults)).toMatchObject({
      stage: "synthesis",
      threshold: 4_500,
      message: expect.stringContaining("500 output tokens of analysis"),
    });
    // Nothing of the fact-check has arrived yet: its claims' output may be on its way.
    expect(contextBloat.evaluate(summary(analysis, { ...noClaims, complete: false }, synthesis), defaults)).toBeUndefined();
  });

  it("points at the stage most over its threshold and names the others", () => {
    const found = contextBloat.evaluate(
      // factcheck: 6,000 / 4,500 = 1.33 over; synthesis: 12,000 / 3,300 = 3.6 over
      summary(step("analysis", 800, 500), step("factcheck", 6_000, 100), step("synthesis", 12_000, 900)),
      defaults,
    );
    expect(found).toMatchObject({ stage: "synthesis", value: 12_000, threshold: 3_300 });
    expect(found!.message).toMatch(/; also over: factcheck$/);
  });

  it("judges nothing in a trace of one stage or a summary without a token flow", () => {
    expect(contextBloat.evaluate(summary(step("analysis", 90_000, 500)), defaults)).toBeUndefined();
    expect(contextBloat.evaluate({ traceId: "t" } as unknown as TraceSummary, defaults)).toBeUndefined();
  });
});
