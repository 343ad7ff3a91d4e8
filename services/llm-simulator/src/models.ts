/** Models the simulator advertises on /v1/models, with their context windows (tokens). */
export interface KnownModel {
  id: string;
  ownedBy: string;
  contextWindow: number;
  /** Reports `completion_tokens_details.reasoning_tokens` (thinks before it answers). */
  reasoning?: boolean;
  /** Caches repeated prompt prefixes and reports `prompt_tokens_details.cached_tokens` (OpenAI, Gemini, DeepSeek do this unasked). */
  promptCaching?: boolean;
}

export const KNOWN_MODELS: readonly KnownModel[] = [
  { id: "gpt-4.1", ownedBy: "openai", contextWindow: 1_047_576, promptCaching: true },
  { id: "gpt-4.1-mini", ownedBy: "openai", contextWindow: 1_047_576, promptCaching: true },
  { id: "gpt-4.1-nano", ownedBy: "openai", contextWindow: 1_047_576, promptCaching: true },
  { id: "gpt-4o", ownedBy: "openai", contextWindow: 128_000, promptCaching: true },
  { id: "gpt-4o-mini", ownedBy: "openai", contextWindow: 128_000, promptCaching: true },
  { id: "o4-mini", ownedBy: "openai", contextWindow: 200_000, promptCaching: true, reasoning: true },
  { id: "gpt-5", ownedBy: "openai", contextWindow: 400_000, promptCaching: true, reasoning: true },
  { id: "gpt-5-mini", ownedBy: "openai", contextWindow: 400_000, promptCaching: true, reasoning: true },
  { id: "gemini-2.5-flash", ownedBy: "google", contextWindow: 1_048_576, promptCaching: true },
  { id: "gemini-2.5-flash-lite", ownedBy: "google", contextWindow: 1_048_576, promptCaching: true },
  { id: "gemini-2.5-pro", ownedBy: "google", contextWindow: 1_048_576, promptCaching: true, reasoning: true },
  { id: "deepseek-v3.2", ownedBy: "deepseek", contextWindow: 128_000, promptCaching: true },
  { id: "deepseek-chat", ownedBy: "deepseek", contextWindow: 128_000, promptCaching: true },
  { id: "deepseek-reasoner", ownedBy: "deepseek", contextWindow: 128_000, promptCaching: true, reasoning: true },
  { id: "claude-sonnet-4.5", ownedBy: "anthropic", contextWindow: 200_000 },
  { id: "claude-haiku-4.5", ownedBy: "anthropic", contextWindow: 200_000 },
  { id: "claude-opus-4.1", ownedBy: "anthropic", contextWindow: 200_000 },
  { id: "llama-3.3-70b-instruct", ownedBy: "meta", contextWindow: 131_072 },
  { id: "mistral-large-latest", ownedBy: "mistralai", contextWindow: 131_072 },
];

export const knownModel = (model: string): KnownModel | undefined => KNOWN_MODELS.find((m) => m.id === model);

/** Context window for a model the table does not know. */
export const DEFAULT_CONTEXT_WINDOW = 128_000;

/**
 * The context window for `model`: an override for the exact model id, then an
 * override for "*" (every model), then the built-in table, then the default.
 */
export function contextWindow(model: string, overrides: Readonly<Record<string, number>>): number {
  return overrides[model] ?? overrides["*"] ?? KNOWN_MODELS.find((m) => m.id === model)?.contextWindow ?? DEFAULT_CONTEXT_WINDOW;
}
