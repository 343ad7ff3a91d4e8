import type { ChatMessage } from "../chat-client.js";
import type { StageDefinition, StageMaterial } from "../stage-definition.js";

/** The messages a stage sends: its system prompt, then the question and the material it reads. */
export function composeMessages(definition: StageDefinition<string>, query: string, material: StageMaterial[]): ChatMessage[] {
  const blocks = [`Research question:\n${query}`, ...material.map((m) => `${m.title}:\n${m.text}`)];
  return [
    { role: "system", content: definition.system },
    { role: "user", content: blocks.join("\n\n") },
  ];
}
