import type { StageDefinition } from "@tracelane/stage-runner";

const SYSTEM = [
  "You are a research editor writing the final report.",
  "Use the question, the analysis and the fact-check notes: keep what is supported,",
  "qualify or drop what the fact-check doubts, and say plainly what remains uncertain.",
  "Structure: summary, findings, caveats, next steps.",
].join(" ");

/** Stage 3: the final report from the query, the analysis and the fact-check notes. */
export const synthesisStage: StageDefinition = {
  stage: "synthesis",
  buildMessages: ({ query, outputs }) => [
    { role: "system", content: SYSTEM },
    {
      role: "user",
      content:
        `Research question:\n${query}\n\nAnalysis:\n${outputs.analysis ?? "(missing)"}\n\n` +
        `Fact-check notes:\n${outputs.factcheck ?? "(missing)"}`,
    },
  ],
};
