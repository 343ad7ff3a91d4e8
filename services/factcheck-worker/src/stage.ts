import { z } from "zod";
import { CLAIM_VERDICTS, type ClaimVerdictAnswer, type StageDefinition, type StructuredAnswer } from "@tracelane/stage-runner";
import { evidenceTools } from "./evidence.js";

const VerdictSchema = z.object({
  verdict: z.enum(CLAIM_VERDICTS),
  evidence: z.array(z.object({ url: z.string().min(1), title: z.string().optional() })).max(10),
  rationale: z.string(),
});

const verdictAnswer: StructuredAnswer<ClaimVerdictAnswer> = {
  name: "claim_verdict",
  jsonSchema: () => ({
    type: "object",
    properties: {
      verdict: { type: "string", enum: [...CLAIM_VERDICTS] },
      evidence: {
        type: "array",
        description: "The sources (from your searches) the verdict rests on.",
        items: {
          type: "object",
          properties: { url: { type: "string" }, title: { type: "string" } },
          required: ["url", "title"],
          additionalProperties: false,
        },
        maxItems: 5,
      },
      rationale: { type: "string", description: "Why, in one or two sentences." },
    },
    required: ["verdict", "evidence", "rationale"],
    additionalProperties: false,
  }),
  schema: VerdictSchema,
  text: (v) => v.rationale,
};

/**
 * Stage 2: list the analysis' claims that need verification (one call). With `fanOut: "claims"` on its
 * pipeline line, it checks each claim on its own instead (one job per claim, in parallel across replicas),
 * searching for evidence with the `search_evidence` tool before giving a verdict (claimCheck).
 */
export const factcheckStage: StageDefinition = {
  stage: "factcheck",
  system: [
    "You are a meticulous fact-checker.",
    "List every claim in the analysis that needs verification. For each: quote the claim,",
    "say why it is uncertain or what could be wrong, and how to verify it (source or method).",
    "End with the claims you consider well supported.",
  ].join(" "),
  material: (outputs) => [{ title: "Analysis to fact-check", text: outputs.analysis ?? "(missing)" }],
  claimCheck: {
    system: [
      "You are a meticulous fact-checker verifying one claim.",
      "Search for evidence with search_evidence (several searches at once if the claim has several parts),",
      "then answer with a verdict: supported, refuted, or unverifiable when the evidence does not settle it.",
      "Cite only sources your searches returned.",
    ].join(" "),
    tools: evidenceTools,
    verdict: verdictAnswer,
    summary: (claims) =>
      claims.length === 0
        ? "The analysis made no checkable claims."
        : claims
            .map((c, i) => {
              const sources = c.evidence?.length ? ` Sources: ${c.evidence.map((e) => e.url).join(", ")}.` : "";
              return `${i + 1}. [${c.verdict}] ${c.claim}${c.rationale ? ` — ${c.rationale}` : ""}${sources}`;
            })
            .join("\n"),
  },
};
