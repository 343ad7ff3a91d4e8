import { intBetween, pick, seededRandom, type Random } from "./random.js";

/** The JSON Schema subset structured outputs use (OpenAI's strict mode: objects, arrays, enums, scalars). */
export interface JsonSchema {
  type?: string | string[];
  properties?: Record<string, JsonSchema>;
  required?: string[];
  items?: JsonSchema;
  enum?: unknown[];
  const?: unknown;
  anyOf?: JsonSchema[];
  minItems?: number;
  maxItems?: number;
  minimum?: number;
  maximum?: number;
  minLength?: number;
  maxLength?: number;
  description?: string;
  $ref?: string;
  $defs?: Record<string, JsonSchema>;
  definitions?: Record<string, JsonSchema>;
}

/** How deep a generated instance nests before it stops (a recursive $ref ends here). */
const MAX_DEPTH = 8;

/**
 * A JSON value valid against `schema`, fixed for a seed: what a model in structured-output mode returns.
 * Strings are sentences about `topic` (so a claim list reads like claims), arrays have 1-3 items within
 * minItems/maxItems, enums and numbers are picked from what the schema allows.
 */
export function instanceOf(schema: JsonSchema, opts: { seed: Buffer; topic: readonly string[] }): unknown {
  const random = seededRandom(opts.seed.readUInt32LE(0));
  const root = schema;
  const resolve = (s: JsonSchema): JsonSchema => {
    if (!s.$ref) return s;
    const name = s.$ref.replace(/^#\/(\$defs|definitions)\//, "");
    return root.$defs?.[name] ?? root.definitions?.[name] ?? {};
  };
  const gen = (raw: JsonSchema, key: string, depth: number): unknown => {
    const s = resolve(raw);
    if (s.const !== undefined) return s.const;
    if (s.enum?.length) return pick(random, s.enum);
    if (s.anyOf?.length)
      return gen(
        pick(
          random,
          s.anyOf.filter((a) => resolve(a).type !== "null"),
        ) ?? s.anyOf[0]!,
        key,
        depth,
      );
    const type = Array.isArray(s.type) ? (s.type.find((t) => t !== "null") ?? "null") : (s.type ?? (s.properties ? "object" : "string"));
    switch (type) {
      case "object": {
        const out: Record<string, unknown> = {};
        if (depth >= MAX_DEPTH) return out;
        for (const [name, prop] of Object.entries(s.properties ?? {})) out[name] = gen(prop, name, depth + 1);
        return out;
      }
      case "array": {
        if (depth >= MAX_DEPTH) return [];
        const min = s.minItems ?? 1;
        // A bounded list is filled (a model asked for "up to 6 claims" makes 6), up to 8; an unbounded one has 1-3 items.
        const length = s.maxItems !== undefined ? Math.max(min, Math.min(s.maxItems, 8)) : intBetween(random, min, Math.max(min, 3));
        return Array.from({ length }, (_, i) => gen(s.items ?? {}, `${key}${i}`, depth + 1));
      }
      case "integer":
      case "number": {
        const lo = s.minimum ?? 0;
        const hi = s.maximum ?? lo + 100;
        const n = lo + random() * (hi - lo);
        return type === "integer" ? Math.round(n) : Math.round(n * 100) / 100;
      }
      case "boolean":
        return random() < 0.5;
      case "null":
        return null;
      default:
        return sentence(random, key, opts.topic, s);
    }
  };
  return gen(schema, "value", 0);
}

const OPENERS = ["Measurements show", "Records indicate", "Studies report", "Observations suggest", "Surveys find"];

function sentence(random: Random, key: string, topic: readonly string[], s: JsonSchema): string {
  const words = topic.length ? topic : ["the", "subject"];
  const a = pick(random, words);
  const b = pick(random, words);
  let text = /id$/i.test(key)
    ? `${key.replace(/id$/i, "") || "item"}-${intBetween(random, 1, 999)}`
    : `${pick(random, OPENERS)} that ${a} is linked to ${b} in ${intBetween(random, 2, 40)} of the cases examined.`;
  if (s.maxLength !== undefined && text.length > s.maxLength) text = text.slice(0, s.maxLength);
  while (s.minLength !== undefined && text.length < s.minLength) text += ` ${a}`;
  return text;
}
