import type { StructuredAnswer } from "./stage-definition.js";

export type ParsedAnswer<T> = { ok: true; value: T } | { ok: false; reason: string };

/** Longest piece of a bad answer quoted in an error (the whole answer is in the span under content capture). */
const QUOTE_CHARS = 160;

/** A structured answer's text, parsed and validated; the reason says what was wrong, for the error and the span. */
export function parseAnswer<T>(def: StructuredAnswer<T>, content: string): ParsedAnswer<T> {
  let json: unknown;
  try {
    json = JSON.parse(content);
  } catch {
    const quoted = content.length > QUOTE_CHARS ? `${content.slice(0, QUOTE_CHARS)}…` : content;
    return { ok: false, reason: `the answer is not JSON (${JSON.stringify(quoted)})` };
  }
  const parsed = def.schema.safeParse(json);
  if (parsed.success) return { ok: true, value: parsed.data };
  const issues = parsed.error.issues
    .slice(0, 3)
    .map((i) => `${i.path.length ? i.path.join(".") : "(root)"}: ${i.message}`)
    .join("; ");
  return { ok: false, reason: `the answer does not match the "${def.name}" schema (${issues})` };
}
