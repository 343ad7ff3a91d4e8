import { describe, expect, it } from "vitest";
import { ContextTooLongError, countMessageTokens, fitToBudget, type StageDefinition } from "@tracelane/stage-runner";

const definition: StageDefinition = {
  stage: "synthesis",
  system: "You write reports.",
  material: () => [],
};
const words = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => `${prefix}${i}`).join(" ");

describe("fitToBudget", () => {
  const material = [
    { title: "Analysis", text: words("old", 400) },
    { title: "Fact-check notes", text: words("new", 100) },
  ];

  it("leaves a prompt that fits untouched", () => {
    const fit = fitToBudget(definition, "Question?", material, 100_000);
    expect(fit.trimmedTokens).toBe(0);
    expect(fit.messages[1]!.content).toContain("old0 ");
  });

  it("keeps the question whole, cuts the oldest material first and keeps its newest part", () => {
    const fit = fitToBudget(definition, "What is the question?", material, 700);
    expect(fit.inputTokens).toBeLessThanOrEqual(700);
    expect(countMessageTokens(fit.messages)).toBe(fit.inputTokens);
    expect(fit.trimmedTokens).toBeGreaterThan(0);
    const user = fit.messages[1]!.content;
    expect(user.startsWith("Research question:\nWhat is the question?")).toBe(true);
    expect(user).not.toContain("old0 "); // the start of the oldest text went first
    expect(user).toContain("old399"); // its end stays
    expect(user).toContain(words("new", 100)); // newer material untouched
    expect(fit.messages[0]!.content).toBe("You write reports.");
  });

  it("refuses when the instructions and question alone exceed the budget", () => {
    expect(() => fitToBudget(definition, words("q", 200), material, 50)).toThrow(ContextTooLongError);
  });
});
