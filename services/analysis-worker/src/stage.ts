import type { StageDefinition } from "@tracelane/stage-runner";

const SYSTEM = [
  "You are a senior research analyst.",
  "Analyse the research question and make specific, checkable claims: number them,",
  "give each the figures, dates or sources it rests on, and say how confident you are.",
  "Prefer concrete statements over generalities; flag what you do not know.",
].join(" ");

/** Stage 1: turn the question into specific claims the next stage can check. */
export const analysisStage: StageDefinition = {
  stage: "analysis",
  buildMessages: ({ query }) => [
    { role: "system", content: SYSTEM },
    { role: "user", content: `Research question:\n${query}` },
  ],
};
