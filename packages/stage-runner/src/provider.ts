/** gen_ai.provider.name from a model name, when the config does not say. */
export function inferProvider(model: string): string {
  const m = model.toLowerCase().replace(/^.*\//, "");
  if (m.startsWith("gpt") || /^o\d/.test(m)) return "openai";
  if (m.startsWith("gemini")) return "gcp.gemini";
  if (m.startsWith("deepseek")) return "deepseek";
  if (m.startsWith("claude")) return "anthropic";
  if (m.startsWith("mistral")) return "mistral_ai";
  if (m.startsWith("llama")) return "meta";
  return "openai_compatible";
}
