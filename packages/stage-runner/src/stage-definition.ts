import type { Stage } from "@tracelane/pipeline";

export interface StageInput<S extends string = Stage> {
  query: string;
  /** Outputs of the stages that ran before this one. */
  outputs: Partial<Record<S, string>>;
}

/** A text a stage reads besides the question, e.g. the analysis for the fact-check. */
export interface StageMaterial {
  title: string;
  text: string;
}

/**
 * What makes a stage worker different from the others: its prompt, in its worker folder's
 * stage.ts. Its queue, default model, output name and next stage are the pipeline's
 * (@tracelane/pipeline). The runner composes the messages (system prompt, question, material) so
 * it can trim the material when a model's context window is too small.
 */
export interface StageDefinition<S extends string = Stage> {
  stage: S;
  system: string;
  /** Earlier outputs this stage reads, oldest first (trimming starts with the oldest). */
  material(outputs: StageInput<S>["outputs"]): StageMaterial[];
}
