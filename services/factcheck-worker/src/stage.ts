import type { StageDefinition } from "@tracelane/stage-runner";

const SYSTEM = [
  "You are a meticulous fact-checker.",
  "List every claim in the analysis that needs verification. For each: quote the claim,",
  "say why it is uncertain or what could be wrong, and how to verify it (source or method).",
  "End with the claims you consider well supported.",
].join(" ");

/** Stage 2: list the analysis' claims that need verification. */
export const factcheckStage: StageDefinition = {
  stage: "factcheck",
  buildMessages: ({ query, outputs }) => [
    { role: "system", content: SYSTEM },
    {
      role: "user",
      content: `Research question:\n${query}\n\nAnalysis to fact-check:\n${outputs.analysis ?? "(missing)"}`,
    },
  ],
};
