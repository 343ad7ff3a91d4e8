import { z } from "zod";
import type { StageDefinition, StructuredAnswer } from "@tracelane/stage-runner";

const AnalysisAnswerSchema = z.object({
  analysis: z.string().trim().min(1, "analysis must not be empty"),
  claims: z.array(z.string().trim().min(1, "a claim must not be empty")).min(1, "make at least one claim"),
});
type AnalysisAnswer = z.infer<typeof AnalysisAnswerSchema>;

/** The analysis as JSON: the text the report builds on, and the claims the fact-check verifies one by one. */
const analysisAnswer: StructuredAnswer<AnalysisAnswer> = {
  name: "research_analysis",
  jsonSchema: ({ maxClaims }) => ({
    type: "object",
    properties: {
      analysis: { type: "string", description: "The analysis of the question, in prose." },
      claims: {
        type: "array",
        description: "Specific, checkable claims the analysis makes, one statement each.",
        items: { type: "string" },
        minItems: 1,
        maxItems: maxClaims,
      },
    },
    required: ["analysis", "claims"],
    additionalProperties: false,
  }),
  schema: AnalysisAnswerSchema,
  text: (a) => [a.analysis, "", "Claims:", ...a.claims.map((c, i) => `${i + 1}. ${c}`)].join("\n"),
  claims: (a) => a.claims,
};

/** Stage 1: turn the question into an analysis and the specific claims the next stage checks. */
export const analysisStage: StageDefinition = {
  stage: "analysis",
  system: [
    "You are a senior research analyst.",
    "Analyse the research question and make specific, checkable claims: number them,",
    "give each the figures, dates or sources it rests on, and say how confident you are.",
    "Prefer concrete statements over generalities; flag what you do not know.",
  ].join(" "),
  material: () => [],
  // JSON: the analysis text, and the claims the fact-check checks one by one (its pipeline line fans out).
  structured: analysisAnswer,
};
