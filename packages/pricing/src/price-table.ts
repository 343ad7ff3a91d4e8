import { readJsonFile } from "@tracelane/runtime";
import { z } from "zod";
import defaultTable from "./prices.json" with { type: "json" };
import { fromNanoUsd, NANO_USD_PER_USD } from "./money.js";

const ModelPriceSchema = z
  .object({
    model: z.string().min(1),
    provider: z.string().min(1),
    aliases: z.array(z.string()).default([]),
    inputPer1M: z.number().nonnegative(),
    cachedInputPer1M: z.number().nonnegative().optional(),
    outputPer1M: z.number().nonnegative(),
    /** Context window in tokens (input + output), when known. */
    contextWindow: z.number().int().positive().optional(),
    source: z.string().min(1),
    asOf: z.string().regex(/^\d{4}-\d{2}-\d{2}$/, "asOf must be a date YYYY-MM-DD"),
  })
  .strict();
export type ModelPrice = z.infer<typeof ModelPriceSchema>;

const PriceFileSchema = z.object({ $comment: z.string().optional(), models: z.array(ModelPriceSchema).min(1) }).strict();

export interface TokenUsage {
  inputTokens: number;
  outputTokens: number;
  /** Part of inputTokens served from the provider's prompt cache. */
  cachedInputTokens?: number;
}

export type CallCost =
  | { priced: true; costUsd: number; model: string; matched: string }
  | { priced: false; costUsd: null; model: string; reason: "unpriced_model" };

/** USD per 1M tokens -> nano-dollars per token. */
const NANO_PER_TOKEN = NANO_USD_PER_USD / 1_000_000;

/** Names we strip before matching: provider prefixes and release-date suffixes. */
function candidates(name: string): string[] {
  const lower = name.trim().toLowerCase();
  const out = new Set<string>([lower]);
  const noPrefix = lower.includes("/") ? lower.slice(lower.lastIndexOf("/") + 1) : lower;
  out.add(noPrefix);
  for (const n of [lower, noPrefix]) {
    out.add(n.replace(/-(\d{4}-\d{2}-\d{2}|\d{8})$/, ""));
  }
  return [...out];
}

export class PriceTable {
  private readonly byName = new Map<string, ModelPrice>();

  constructor(readonly entries: readonly ModelPrice[]) {
    for (const entry of entries) {
      for (const name of [entry.model, ...entry.aliases]) {
        const key = name.toLowerCase();
        const existing = this.byName.get(key);
        if (existing && existing !== entry) {
          throw new Error(`price table: "${name}" is listed for both ${existing.model} and ${entry.model}`);
        }
        this.byName.set(key, entry);
      }
    }
  }

  /** Parse a price file's JSON text; throws with the path of the offending field. */
  static parse(json: unknown, origin = "price table"): PriceTable {
    const result = PriceFileSchema.safeParse(json);
    if (!result.success) {
      const issue = result.error.issues[0];
      throw new Error(`${origin}: ${issue?.path.join(".")}: ${issue?.message}`);
    }
    return new PriceTable(result.data.models);
  }

  /** Exact name, then aliases, then without a provider prefix (`openai/gpt-4.1`) or date suffix. */
  lookup(model: string): ModelPrice | undefined {
    for (const name of candidates(model)) {
      const hit = this.byName.get(name);
      if (hit) return hit;
    }
    return undefined;
  }

  /** Cost of one call, rounded to 1e-9 USD. An unknown model is unpriced (null), never a silent $0. */
  cost(model: string, usage: TokenUsage): CallCost {
    const price = this.lookup(model);
    if (!price) return { priced: false, costUsd: null, model, reason: "unpriced_model" };
    const cached = Math.min(usage.cachedInputTokens ?? 0, usage.inputTokens);
    const cachedRate = price.cachedInputPer1M ?? price.inputPer1M;
    // In nano-dollars a price with up to 3 decimals per 1M tokens is a whole number per token.
    const nanoUsd =
      (usage.inputTokens - cached) * price.inputPer1M * NANO_PER_TOKEN +
      cached * cachedRate * NANO_PER_TOKEN +
      usage.outputTokens * price.outputPer1M * NANO_PER_TOKEN;
    return { priced: true, costUsd: fromNanoUsd(Math.round(nanoUsd)), model, matched: price.model };
  }
}

let cachedDefault: PriceTable | undefined;

/** The built-in table, or the file at `path` (env TRACELANE_PRICE_TABLE) when given. */
export function loadPriceTable(path?: string): PriceTable {
  if (path) return PriceTable.parse(readJsonFile(path, "TRACELANE_PRICE_TABLE"), path);
  cachedDefault ??= PriceTable.parse(defaultTable, "built-in price table");
  return cachedDefault;
}
