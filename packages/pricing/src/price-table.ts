import { createHash } from "node:crypto";
import { readJsonFile } from "@tracelane/runtime";
import { z } from "zod";
import defaultTable from "./prices.json" with { type: "json" };
import { fromNanoUsd, NANO_USD_PER_USD } from "./money.js";

const DATE = /^\d{4}-\d{2}-\d{2}$/;
const DATE_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,3})?)?(Z|[+-]\d{2}:\d{2})$/;

/**
 * An `effectiveFrom` as epoch ms: a date is its UTC midnight, a time needs `Z` or an offset. NaN when it is
 * neither, or not a real day (2026-02-30).
 */
function instantOf(value: string): number {
  const day = value.slice(0, 10);
  const midnight = Date.parse(`${day}T00:00:00Z`);
  // Date.parse rolls 2026-02-30 over to March 2: a real day prints back as itself.
  if (!Number.isFinite(midnight) || new Date(midnight).toISOString().slice(0, 10) !== day) return NaN;
  if (DATE.test(value)) return midnight;
  return DATE_TIME.test(value) ? Date.parse(value) : NaN;
}

const EffectiveFromSchema = z
  .string()
  .refine((v) => Number.isFinite(instantOf(v)), "must be a date YYYY-MM-DD (UTC midnight) or an ISO 8601 time with Z or an offset");

const rate = () => z.number().nonnegative();

const DatedPriceSchema = z
  .object({
    effectiveFrom: EffectiveFromSchema,
    inputPer1M: rate(),
    cachedInputPer1M: rate().optional(),
    outputPer1M: rate(),
    /** Where this price comes from, when it is not the entry's `source`. */
    source: z.string().min(1).optional(),
  })
  .strict();

const RATE_FIELDS = ["inputPer1M", "cachedInputPer1M", "outputPer1M"] as const;

const ModelEntrySchema = z
  .object({
    model: z.string().min(1),
    provider: z.string().min(1),
    aliases: z.array(z.string()).default([]),
    // One price in force at all times (the format before dated prices)...
    inputPer1M: rate().optional(),
    cachedInputPer1M: rate().optional(),
    outputPer1M: rate().optional(),
    // ...or a list of prices, each in force from its date until the next one's.
    prices: z.array(DatedPriceSchema).min(1).optional(),
    /** Context window in tokens (input + output), when known. */
    contextWindow: z.number().int().positive().optional(),
    source: z.string().min(1),
    asOf: z.string().regex(DATE, "asOf must be a date YYYY-MM-DD"),
  })
  .strict()
  .superRefine((entry, ctx) => {
    if (entry.prices) {
      for (const field of RATE_FIELDS) {
        if (entry[field] !== undefined) {
          ctx.addIssue({ code: "custom", path: [field], message: `give the rates either in ${field} or in prices (dated), not both` });
        }
      }
      const seen = new Map<number, number>();
      entry.prices.forEach((p, i) => {
        const at = instantOf(p.effectiveFrom);
        const first = seen.get(at);
        if (first !== undefined) {
          ctx.addIssue({
            code: "custom",
            path: ["prices", i, "effectiveFrom"],
            message: `${p.effectiveFrom} is the same time as prices.${first}.effectiveFrom (${entry.prices![first]!.effectiveFrom}): one price per time`,
          });
        } else seen.set(at, i);
      });
      return;
    }
    for (const field of ["inputPer1M", "outputPer1M"] as const) {
      if (entry[field] === undefined) {
        ctx.addIssue({
          code: "custom",
          path: [field],
          message: `required (a number, USD per 1M tokens), unless the entry lists dated prices in prices`,
        });
      }
    }
  });

/** A price file (TRACELANE_PRICE_TABLE, or an inline table such as a reprice request's): `{ models: [...] }`. */
export const PriceFileSchema = z.object({ $comment: z.string().optional(), models: z.array(ModelEntrySchema).min(1) }).strict();
export type PriceFile = z.input<typeof PriceFileSchema>;

/** USD per 1M tokens. */
export interface Rates {
  inputPer1M: number;
  /** Input tokens served from the provider's prompt cache; absent: the input rate. */
  cachedInputPer1M?: number;
  outputPer1M: number;
}

/** One price of a model and when it took effect. */
export interface DatedPrice extends Rates {
  /** As the file gives it; absent for an entry's single undated price (in force at all times). */
  effectiveFrom?: string;
  /** `effectiveFrom` in epoch ms; -Infinity when undated. */
  effectiveFromMs: number;
  source?: string;
}

/** What the table says of a model besides its prices: names, window, where the prices come from. */
interface ModelInfo {
  model: string;
  provider: string;
  aliases: string[];
  contextWindow?: number;
  source: string;
  asOf: string;
}

/** A model as the table lists it: names, window, and its prices sorted by `effectiveFromMs`. */
export interface ModelEntry extends ModelInfo {
  prices: readonly DatedPrice[];
}

/** A model with the price in force at one time (what `lookup` answers). */
export interface ModelPrice extends ModelInfo, Rates {
  /** When the price applied took effect; absent for an undated price. */
  effectiveFrom?: string;
}

export interface TokenUsage {
  inputTokens: number;
  outputTokens: number;
  /** Part of inputTokens served from the provider's prompt cache. */
  cachedInputTokens?: number;
}

export type CallCost =
  | {
      priced: true;
      costUsd: number;
      model: string;
      matched: string;
      /** The table's version (PriceTable.version). */
      version: string;
      /** The `effectiveFrom` of the price applied; absent for an undated price. */
      effectiveFrom?: string;
    }
  | { priced: false; costUsd: null; model: string; reason: "unpriced_model" };

/** What prices a call: a PriceTable, or a PriceBook that reloads one. */
export interface PriceSource {
  readonly version: string;
  readonly entries: readonly ModelEntry[];
  lookup(model: string, atMs?: number): ModelPrice | undefined;
  cost(model: string, usage: TokenUsage, atMs?: number): CallCost;
}

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

type ParsedEntry = z.infer<typeof ModelEntrySchema>;

function entryOf(e: ParsedEntry): ModelEntry {
  const prices: DatedPrice[] = e.prices
    ? e.prices
        .map(({ effectiveFrom, source, ...rates }) => ({
          ...rates,
          effectiveFrom,
          effectiveFromMs: instantOf(effectiveFrom),
          ...(source ? { source } : {}),
        }))
        .sort((a, b) => a.effectiveFromMs - b.effectiveFromMs)
    : [
        {
          inputPer1M: e.inputPer1M!,
          ...(e.cachedInputPer1M !== undefined ? { cachedInputPer1M: e.cachedInputPer1M } : {}),
          outputPer1M: e.outputPer1M!,
          effectiveFromMs: -Infinity,
        },
      ];
  return {
    model: e.model,
    provider: e.provider,
    aliases: e.aliases,
    ...(e.contextWindow !== undefined ? { contextWindow: e.contextWindow } : {}),
    source: e.source,
    asOf: e.asOf,
    prices,
  };
}

/**
 * The version of a table: the first 12 hex digits of the SHA-256 of its canonical form (every field but
 * `$comment`, keys in a fixed order, models by name, aliases sorted, prices by date, dates as ISO instants),
 * so whitespace, key order and the order of models and prices in the file do not change it.
 */
function versionOf(entries: readonly ModelEntry[]): string {
  const canonical = [...entries]
    .sort((a, b) => (a.model < b.model ? -1 : a.model > b.model ? 1 : 0))
    .map((e) => [
      e.model,
      e.provider,
      [...e.aliases].sort(),
      e.contextWindow ?? null,
      e.source,
      e.asOf,
      e.prices.map((p) => [
        Number.isFinite(p.effectiveFromMs) ? new Date(p.effectiveFromMs).toISOString() : null,
        p.inputPer1M,
        p.cachedInputPer1M ?? null,
        p.outputPer1M,
        p.source ?? null,
      ]),
    ]);
  return createHash("sha256").update(JSON.stringify(canonical)).digest("hex").slice(0, 12);
}

/** The price of `entry` in force at `atMs`: the latest that took effect by then, else the earliest. */
function priceAt(entry: ModelEntry, atMs: number): DatedPrice {
  let hit = entry.prices[0]!;
  for (const p of entry.prices) {
    if (p.effectiveFromMs <= atMs) hit = p;
    else break;
  }
  return hit;
}

export class PriceTable implements PriceSource {
  /** Stable content hash of the table (12 hex digits of SHA-256; see versionOf). */
  readonly version: string;
  private readonly byName = new Map<string, ModelEntry>();

  constructor(readonly entries: readonly ModelEntry[]) {
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
    this.version = versionOf(entries);
  }

  /** Parse a price file's JSON; throws naming the offending field (`models.3.prices.1.effectiveFrom (gpt-4.1): …`). */
  static parse(json: unknown, origin = "price table"): PriceTable {
    const result = PriceFileSchema.safeParse(json);
    if (!result.success) {
      const issue = result.error.issues[0]!;
      const [top, index] = issue.path;
      const model =
        top === "models" && typeof index === "number"
          ? (json as { models?: Array<{ model?: unknown }> }).models?.[index]?.model
          : undefined;
      throw new Error(`${origin}: ${issue.path.join(".")}${typeof model === "string" ? ` (${model})` : ""}: ${issue.message}`);
    }
    try {
      return new PriceTable(result.data.models.map(entryOf));
    } catch (err) {
      throw new Error(`${origin}: ${(err as Error).message.replace(/^price table: /, "")}`, { cause: err });
    }
  }

  /** The table's entry for `model`: exact name, then aliases, then without a provider prefix (`openai/gpt-4.1`) or date suffix. */
  entry(model: string): ModelEntry | undefined {
    for (const name of candidates(model)) {
      const hit = this.byName.get(name);
      if (hit) return hit;
    }
    return undefined;
  }

  /**
   * The model's price in force at `atMs` (default: now): the latest price whose `effectiveFrom` is at or before
   * it. A time before a model's first `effectiveFrom` gets that first price, as a table listing one price does.
   */
  lookup(model: string, atMs: number = Date.now()): ModelPrice | undefined {
    const entry = this.entry(model);
    if (!entry) return undefined;
    const price = priceAt(entry, atMs);
    return {
      model: entry.model,
      provider: entry.provider,
      aliases: entry.aliases,
      ...(entry.contextWindow !== undefined ? { contextWindow: entry.contextWindow } : {}),
      source: price.source ?? entry.source,
      asOf: entry.asOf,
      inputPer1M: price.inputPer1M,
      ...(price.cachedInputPer1M !== undefined ? { cachedInputPer1M: price.cachedInputPer1M } : {}),
      outputPer1M: price.outputPer1M,
      ...(price.effectiveFrom !== undefined ? { effectiveFrom: price.effectiveFrom } : {}),
    };
  }

  /**
   * Cost of one call made at `atMs` (default: now), by the price in force then (see lookup), rounded to 1e-9 USD,
   * with the table's version. An unknown model is unpriced (null), never a silent $0.
   */
  cost(model: string, usage: TokenUsage, atMs: number = Date.now()): CallCost {
    const entry = this.entry(model);
    if (!entry) return { priced: false, costUsd: null, model, reason: "unpriced_model" };
    const price = priceAt(entry, atMs);
    const cached = Math.min(usage.cachedInputTokens ?? 0, usage.inputTokens);
    const cachedRate = price.cachedInputPer1M ?? price.inputPer1M;
    // In nano-dollars a price with up to 3 decimals per 1M tokens is a whole number per token.
    const nanoUsd =
      (usage.inputTokens - cached) * price.inputPer1M * NANO_PER_TOKEN +
      cached * cachedRate * NANO_PER_TOKEN +
      usage.outputTokens * price.outputPer1M * NANO_PER_TOKEN;
    return {
      priced: true,
      costUsd: fromNanoUsd(Math.round(nanoUsd)),
      model,
      matched: entry.model,
      version: this.version,
      ...(price.effectiveFrom !== undefined ? { effectiveFrom: price.effectiveFrom } : {}),
    };
  }
}

let cachedDefault: PriceTable | undefined;

/** The built-in table, or the file at `path` (env TRACELANE_PRICE_TABLE) when given; throws naming the file and field. */
export function loadPriceTable(path?: string): PriceTable {
  if (path) return PriceTable.parse(readJsonFile(path, "TRACELANE_PRICE_TABLE"), path);
  cachedDefault ??= PriceTable.parse(defaultTable, "built-in price table");
  return cachedDefault;
}
