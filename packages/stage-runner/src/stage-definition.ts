import type { Stage } from "@tracelane/queue-contract";

export interface StageInput {
  query: string;
  /** Outputs of the stages that ran before this one. */
  outputs: Partial<Record<Stage, string>>;
}

/** A text a stage reads besides the question, e.g. the analysis for the fact-check. */
export interface StageMaterial {
  title: string;
  text: string;
}

/**
 * What makes a stage worker different from the others: data, not a loop. The
 * runner composes the messages (system prompt, question, material) so it can
 * trim the material when a model's context window is too small.
 */
export interface StageDefinition {
  stage: Stage;
  system: string;
  /** Earlier outputs this stage reads, oldest first (trimming starts with the oldest). */
  material(outputs: StageInput["outputs"]): StageMaterial[];
}
