import { decode, encode } from "gpt-tokenizer/encoding/o200k_base";

// Text that happens to spell a special token (e.g. "<|endoftext|>") is counted as plain text.
const PLAIN_TEXT = { disallowedSpecial: new Set<string>() };

/** Chat formatting overhead, as in OpenAI's counting recipe: ~3 per message plus 3 priming the reply. */
export const TOKENS_PER_MESSAGE = 3;
export const TOKENS_PER_REPLY = 3;

export function countTokens(text: string): number {
  return encode(text, PLAIN_TEXT).length;
}

/** The longest prefix of `text` that fits in `maxTokens` o200k tokens. */
export function truncateToTokens(text: string, maxTokens: number): string {
  const tokens = encode(text, PLAIN_TEXT);
  if (tokens.length <= maxTokens) return text;
  let prefix = decode(tokens.slice(0, maxTokens));
  // A cut inside a multi-byte character decodes to U+FFFD; drop the partial character.
  while (prefix.endsWith("\uFFFD")) prefix = prefix.slice(0, -1);
  return prefix;
}

/** prompt_tokens: the tokens of every message's text plus the per-message and reply overhead. */
export function countPromptTokens(messages: ReadonlyArray<{ text: string }>): number {
  let total = TOKENS_PER_REPLY;
  for (const message of messages) total += TOKENS_PER_MESSAGE + countTokens(message.text);
  return total;
}
