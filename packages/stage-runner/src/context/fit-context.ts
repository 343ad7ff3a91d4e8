import type { ChatMessage } from "../chat-client.js";
import type { StageDefinition, StageMaterial } from "../stage-definition.js";
import { composeMessages } from "./compose-prompt.js";
import { countMessageTokens, countTokens, keepLastTokens } from "./tokens.js";

export interface FitResult {
  messages: ChatMessage[];
  inputTokens: number;
  /** Tokens removed from the material (0 when it fitted). */
  trimmedTokens: number;
}

/** The question and the system prompt alone do not fit: nothing left to trim. */
export class ContextTooLongError extends Error {
  override readonly name = "ContextTooLongError";
  constructor(
    readonly needed: number,
    readonly budget: number,
  ) {
    super(`the question and instructions alone need ${needed} tokens but the budget is ${budget}`);
  }
}

/** More than the token count of any prompt: UTF-8 bytes plus the chat framing. */
function byteUpperBound(messages: ReadonlyArray<{ content: string }>): number {
  return messages.reduce((n, m) => n + Buffer.byteLength(m.content) + 4, 3);
}

const TRIM_MARK = "[… earlier part trimmed to fit the context window …]\n";

/**
 * Fit a stage's prompt into `budget` input tokens: the system prompt and the
 * question are kept whole; material is cut from the oldest item first, keeping
 * the newest part of each text.
 */
export function fitToBudget(definition: StageDefinition<string>, query: string, material: StageMaterial[], budget: number): FitResult {
  let messages = composeMessages(definition, query, material);
  // A token is at least one byte, so a prompt with fewer bytes than the budget fits without
  // running the tokenizer (the common case with 128k+ windows); count only if someone asks.
  if (byteUpperBound(messages) <= budget) {
    let counted: number | undefined;
    const fitted = messages;
    return {
      messages: fitted,
      get inputTokens() {
        return (counted ??= countMessageTokens(fitted));
      },
      trimmedTokens: 0,
    };
  }
  const full = countMessageTokens(messages);
  if (full <= budget) return { messages, inputTokens: full, trimmedTokens: 0 };

  const fixed = countMessageTokens(
    composeMessages(
      definition,
      query,
      material.map((m) => ({ ...m, text: "" })),
    ),
  );
  if (fixed + countTokens(TRIM_MARK) > budget) throw new ContextTooLongError(fixed, budget);

  const items = material.map((m) => ({ ...m, tokens: countTokens(m.text) }));
  let excess = full - budget;
  for (const item of items) {
    if (excess <= 0) break;
    const keep = Math.max(0, item.tokens - excess - countTokens(TRIM_MARK) - 2);
    excess -= item.tokens - keep;
    item.text = keep > 0 ? TRIM_MARK + keepLastTokens(item.text, keep) : TRIM_MARK;
  }
  messages = composeMessages(definition, query, items);
  // Character-share cutting can land a few tokens over; shave the newest item's head until it fits.
  let inputTokens = countMessageTokens(messages);
  while (inputTokens > budget) {
    const last = items.findLast((i) => i.text.length > TRIM_MARK.length);
    if (!last) throw new ContextTooLongError(inputTokens, budget);
    const body = last.text.slice(TRIM_MARK.length);
    last.text = TRIM_MARK + body.slice(Math.ceil(body.length * 0.05) + 4);
    messages = composeMessages(definition, query, items);
    inputTokens = countMessageTokens(messages);
  }
  return { messages, inputTokens, trimmedTokens: full - inputTokens };
}
