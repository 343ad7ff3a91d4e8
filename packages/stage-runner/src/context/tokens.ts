import { encode } from "gpt-tokenizer/encoding/o200k_base";

/** Tokens of a text with o200k_base (GPT-4.1/4o family); close enough for other providers' budgeting. */
export const countTokens = (text: string): number => encode(text).length;

/** Per-message framing tokens in the chat format (role, separators). */
const MESSAGE_OVERHEAD = 4;
const REPLY_PRIMER = 3;

export function countMessageTokens(messages: ReadonlyArray<{ content: string }>): number {
  return messages.reduce((n, m) => n + countTokens(m.content) + MESSAGE_OVERHEAD, REPLY_PRIMER);
}

/** The last `keep` tokens of `text` (the newest part of it). */
export function keepLastTokens(text: string, keep: number): string {
  const tokens = encode(text);
  if (tokens.length <= keep) return text;
  // Decoding a token slice would need the decoder; cutting by the character share is within a few tokens.
  const share = keep / tokens.length;
  return text.slice(Math.floor(text.length * (1 - share)));
}
