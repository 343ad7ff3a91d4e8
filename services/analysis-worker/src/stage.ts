import type { StageDefinition } from "@tracelane/stage-runner";

/** Stage 1: turn the question into specific claims the next stage can check. */
export const analysisStage: StageDefinition = {
  stage: "analysis",
  system: [
    "You are a senior research analyst.",
    "Analyse the research question and make specific, checkable claims: number them,",
    "give each the figures, dates or sources it rests on, and say how confident you are.",
    "Prefer concrete statements over generalities; flag what you do not know.",
  ].join(" "),
  material: () => [],
};
