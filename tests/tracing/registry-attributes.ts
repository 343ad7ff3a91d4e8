import { readFileSync } from "node:fs";

/**
 * The registry entries (name -> type) of every OpenTelemetry attribute we emit or read, as checked in from the
 * official registry (registry-attributes.json says from which commits). Ours are under tracelane.* instead.
 */
export const REGISTRY_ATTRIBUTES: Record<string, string> = (
  JSON.parse(readFileSync(new URL("./registry-attributes.json", import.meta.url), "utf8")) as { attributes: Record<string, string> }
).attributes;

const typeOf = (v: unknown): string =>
  Array.isArray(v) ? `${typeOf(v[0])}[]` : typeof v === "number" ? (Number.isInteger(v) ? "int" : "double") : typeof v;

/** Why `key: value` on a span does not fit the registry (undefined when it does, or when the name is ours). */
export function registryProblem(key: string, value: unknown): string | undefined {
  if (key.startsWith("tracelane.")) return undefined;
  const entry = REGISTRY_ATTRIBUTES[key];
  if (!entry) return `${key} is not in the registry (ours go under tracelane.*)`;
  const type = entry.replace(" (deprecated)", "");
  if (type === "any") return undefined;
  const actual = typeOf(value);
  // A double that happens to be whole is still a double (e.g. 1.0 seconds).
  if (actual === type || (type === "double" && actual === "int")) return undefined;
  return `${key} is ${type} in the registry, not ${actual}`;
}
