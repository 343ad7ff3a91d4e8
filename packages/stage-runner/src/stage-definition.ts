import type { Stage } from "@tracelane/pipeline";
import type { ClaimVerdict } from "@tracelane/research-store";
import type { z } from "zod";
import type { ToolFailure } from "@tracelane/tracing";
import type { ChatTool } from "./chat-client.js";

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

/** What shapes a structured answer: the worker's MAX_CLAIMS. */
export interface AnswerLimits {
  maxClaims: number;
}

/**
 * A stage (or a claim check) that answers in JSON (`response_format: json_schema`, strict). The runner
 * validates the answer with `schema`; one that does not match is asked for again once, then the stage fails.
 */
export interface StructuredAnswer<T> {
  /** The schema's name in the request (letters, digits, _ and -). */
  name: string;
  /** The JSON Schema sent to the model. */
  jsonSchema(limits: AnswerLimits): Record<string, unknown>;
  /** What a valid answer is: checked on every answer, whatever the model was told. */
  schema: z.ZodType<T>;
  /** The stage's output text: what the research shows and the next stages read. */
  text(answer: T): string;
  /** The claims the answer makes, for the fan-out stage after it (the runner keeps at most MAX_CLAIMS). */
  claims?(answer: T): string[];
}

/** What a stage's tools may build on: the model endpoint (whose host may serve them too) and the fetch to use. */
export interface ToolContext {
  llmBaseURL: string;
  /** The model endpoint's key, for a tool served by the same host (the simulator's /search). */
  llmApiKey: string;
  fetch?: typeof fetch;
}

/** A function the model may call while checking a claim, and how the worker runs it. */
export interface ClaimTool {
  definition: ChatTool;
  /**
   * Run the call (its arguments as the model wrote them); resolves to the text sent back to the model, or to a
   * ToolFailure (the span shows the error, the model reads its result and may search again or give up).
   */
  run(args: unknown, signal?: AbortSignal): Promise<string | ToolFailure>;
}

/** A claim check's answer. */
export interface ClaimVerdictAnswer {
  verdict: ClaimVerdict;
  /** The sources the verdict rests on, from the tool results. */
  evidence: Array<{ url: string; title?: string | undefined }>;
  rationale: string;
}

/**
 * How a fan-out stage (`fanOut: "claims"` in the pipeline) checks one claim: a tool-using loop. The model
 * may ask for tools (several at once, run in parallel) for up to MAX_TOOL_TURNS turns, then answers `verdict`.
 */
export interface ClaimCheckDefinition {
  system: string;
  /** The tools, built once at boot from the worker's environment (a bad variable fails the boot, naming it). */
  tools(env: Record<string, string | undefined>, ctx: ToolContext): ClaimTool[];
  verdict: StructuredAnswer<ClaimVerdictAnswer>;
  /** The stage's output once every claim is checked (what the next stages read). */
  summary(
    claims: Array<{ claim: string; verdict: ClaimVerdict; rationale?: string | undefined; evidence?: Array<{ url: string }> }>,
  ): string;
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
  /** The stage answers in JSON (the first stage's claims, for instance). */
  structured?: StructuredAnswer<any>;
  /** Stream the answer, each piece as a `<stage>.delta` event (the synthesis: a person watches the report being written). */
  stream?: boolean;
  /** Required for a fan-out stage: how it checks one claim. */
  claimCheck?: ClaimCheckDefinition;
}
