import type { Stage } from "@tracelane/queue-contract";
import type { ChatMessage } from "./chat-client.js";

export interface StageInput {
  query: string;
  /** Outputs of the stages that ran before this one. */
  outputs: Partial<Record<Stage, string>>;
}

/** What makes a stage worker different from the others: data, not a loop. */
export interface StageDefinition {
  stage: Stage;
  buildMessages(input: StageInput): ChatMessage[];
}
