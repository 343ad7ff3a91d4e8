import type { StageDefinition } from "@tracelane/stage-runner";

/** Stage 2: list the analysis' claims that need verification. */
export const factcheckStage: StageDefinition = {
  stage: "factcheck",
  system: [
    "You are a meticulous fact-checker.",
    "List every claim in the analysis that needs verification. For each: quote the claim,",
    "say why it is uncertain or what could be wrong, and how to verify it (source or method).",
    "End with the claims you consider well supported.",
  ].join(" "),
  material: (outputs) => [{ title: "Analysis to fact-check", text: outputs.analysis ?? "(missing)" }],
};
