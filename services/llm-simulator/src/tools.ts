import type { PromptMessage } from "./content.js";
import { instanceOf, type JsonSchema } from "./structured.js";

/** A function tool offered in the request (`tools: [{ type: "function", function: {...} }]`). */
export interface ToolSpec {
  name: string;
  parameters?: JsonSchema;
}

export type ToolChoice = "none" | "auto" | "required" | { name: string };

export interface ToolCall {
  id: string;
  type: "function";
  function: { name: string; arguments: string };
}

/** Argument names a model fills with the question's words rather than a generic value. */
const QUERY_LIKE = /^(q|query|search|terms?|claim|text|question|topic)$/i;

const ID_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/**
 * What the model does with its tools this turn, like a tool-using chat model: with `auto`, it asks for tools
 * once after the user's message (1 or 2 calls in parallel, fixed by the request digest; 1 when
 * parallel_tool_calls is false) and answers once the results are in; `required` or a named tool always calls;
 * `none` never does. Undefined means: answer in text.
 */
export function planToolCalls(input: {
  tools: readonly ToolSpec[];
  toolChoice: ToolChoice;
  parallel: boolean;
  messages: readonly PromptMessage[];
  topic: readonly string[];
  digest: Buffer;
}): ToolCall[] | undefined {
  const { tools, toolChoice, digest } = input;
  if (tools.length === 0 || toolChoice === "none") return undefined;
  let lastUser = -1;
  input.messages.forEach((m, i) => {
    if (m.role === "user") lastUser = i;
  });
  const resultsSinceUser = input.messages.slice(lastUser + 1).some((m) => m.role === "tool");
  if (toolChoice === "auto" && resultsSinceUser) return undefined;

  const named = typeof toolChoice === "object" ? tools.find((t) => t.name === toolChoice.name) : undefined;
  const tool = named ?? tools[digest[1]! % tools.length]!;
  const count = input.parallel && !named ? 1 + (digest[0]! % 2) : 1;
  const round = input.messages.slice(lastUser + 1).filter((m) => m.role === "assistant").length;
  return Array.from({ length: count }, (_, i) => ({
    id: callId(digest, round * 8 + i),
    type: "function" as const,
    function: { name: tool.name, arguments: JSON.stringify(argumentsFor(tool, input.topic, digest, i)) },
  }));
}

function argumentsFor(tool: ToolSpec, topic: readonly string[], digest: Buffer, i: number): Record<string, unknown> {
  const schema = tool.parameters ?? { type: "object", properties: { query: { type: "string" } } };
  const generated = instanceOf(schema, { seed: digest.subarray(i * 4), topic });
  const args =
    typeof generated === "object" && generated !== null && !Array.isArray(generated) ? (generated as Record<string, unknown>) : {};
  // Each parallel call searches a different slice of the question.
  const words = topic.length ? topic : ["evidence"];
  const phrase = [words[i % words.length], words[(i + 1) % words.length], words[(i + 2) % words.length]].filter(Boolean).join(" ");
  for (const [name, prop] of Object.entries(schema.properties ?? {})) {
    if (QUERY_LIKE.test(name) && (prop.type ?? "string") === "string") args[name] = phrase;
  }
  return args;
}

function callId(digest: Buffer, n: number): string {
  let id = "call_";
  for (let k = 0; k < 24; k++) id += ID_ALPHABET[((digest[(k + n) % digest.length] ?? 0) + n * 7) % ID_ALPHABET.length];
  return id;
}
