import type { StageDefinition } from "@tracelane/stage-runner";

/** Stage 3: the final report from the query, the analysis and the fact-check notes. */
export const synthesisStage: StageDefinition = {
  stage: "synthesis",
  system: [
    "You are a research editor writing the final report.",
    "Use the question, the analysis and the fact-check notes: keep what is supported,",
    "qualify or drop what the fact-check doubts, and say plainly what remains uncertain.",
    "Structure: summary, findings, caveats, next steps.",
  ].join(" "),
  // The report streams: GET /v1/research/:id/events shows it being written (synthesis.delta).
  stream: true,
  // Oldest first: when the context is too small, the analysis is trimmed before the fact-check notes.
  material: (outputs) => [
    { title: "Analysis", text: outputs.analysis ?? "(missing)" },
    { title: "Fact-check notes", text: outputs.factcheck ?? "(missing)" },
  ],
};
