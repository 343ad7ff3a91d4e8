import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { loadPriceTable, PriceTable } from "@tracelane/pricing";

const MILLION = { inputTokens: 1_000_000, outputTokens: 1_000_000 };
const at = (iso: string) => Date.parse(iso);

/** A model whose list price halves on 2026-03-01 (given out of order: unsorted is fine). */
const houseModel = (prices: unknown[] = DATED) => ({
  model: "house-model",
  provider: "me",
  aliases: ["house"],
  prices,
  source: "contract",
  asOf: "2026-03-01",
});
const DATED = [
  { effectiveFrom: "2026-03-01", inputPer1M: 1, outputPer1M: 2 },
  { effectiveFrom: "2026-01-01", inputPer1M: 2, cachedInputPer1M: 1, outputPer1M: 4 },
];
const undated = { model: "flat-model", provider: "me", inputPer1M: 1, outputPer1M: 1, source: "s", asOf: "2026-01-01" };

const parse = (json: unknown) => PriceTable.parse(json, "prices.json");

describe("dated prices", () => {
  const table = parse({ models: [houseModel(), undated] });

  it("prices calls on each side of a price change by the price in force at their start", () => {
    expect(table.cost("house-model", MILLION, at("2026-02-15T12:00:00Z")).costUsd).toBe(6);
    expect(table.cost("house-model", MILLION, at("2026-03-15T12:00:00Z")).costUsd).toBe(3);
    expect(table.lookup("house", at("2026-02-15T12:00:00Z"))).toMatchObject({
      inputPer1M: 2,
      cachedInputPer1M: 1,
      effectiveFrom: "2026-01-01",
    });
    expect(table.lookup("house", at("2026-03-15T12:00:00Z"))).toMatchObject({ inputPer1M: 1, outputPer1M: 2, effectiveFrom: "2026-03-01" });
    // The older price's cached rate does not leak into the newer one (which has none: cached input at the input rate).
    expect(table.lookup("house", at("2026-03-15T12:00:00Z"))?.cachedInputPer1M).toBeUndefined();
  });

  it("applies a new price from its effectiveFrom exactly (a date is its UTC midnight), the old one to the millisecond before", () => {
    const boundary = at("2026-03-01T00:00:00Z");
    expect(table.cost("house-model", MILLION, boundary)).toMatchObject({ costUsd: 3, effectiveFrom: "2026-03-01" });
    expect(table.cost("house-model", MILLION, boundary - 1)).toMatchObject({ costUsd: 6, effectiveFrom: "2026-01-01" });
  });

  it("takes a time with an offset as that instant", () => {
    const t = parse({ models: [houseModel([{ effectiveFrom: "2026-03-01T09:00:00+09:00", inputPer1M: 1, outputPer1M: 1 }, DATED[1]])] });
    // 09:00 in Tokyo is midnight UTC.
    expect(t.cost("house-model", MILLION, at("2026-03-01T00:00:00Z")).costUsd).toBe(2);
    expect(t.cost("house-model", MILLION, at("2026-02-28T23:59:59.999Z")).costUsd).toBe(6);
  });

  it("prices a call before a model's first effectiveFrom at its earliest price, as a one-price entry would", () => {
    expect(table.cost("house-model", MILLION, at("2025-06-01T00:00:00Z"))).toMatchObject({
      priced: true,
      costUsd: 6,
      effectiveFrom: "2026-01-01",
    });
  });

  it("prices at the current time when no time is given", () => {
    const t = parse({
      models: [
        houseModel([
          { effectiveFrom: "2020-01-01", inputPer1M: 1, outputPer1M: 1 },
          { effectiveFrom: "2999-01-01", inputPer1M: 9, outputPer1M: 9 },
        ]),
      ],
    });
    expect(t.cost("house-model", MILLION).costUsd).toBe(2);
    expect(t.lookup("house-model")?.inputPer1M).toBe(1);
  });

  it("keeps one-price entries in force at all times, with no effectiveFrom on their cost", () => {
    const cost = table.cost("flat-model", MILLION, at("1999-01-01T00:00:00Z"));
    expect(cost).toEqual({ priced: true, costUsd: 2, model: "flat-model", matched: "flat-model", version: table.version });
    expect(table.lookup("flat-model")).not.toHaveProperty("effectiveFrom");
  });

  it("records the table's version on every priced call, and none on an unpriced one", () => {
    expect(table.cost("house-model", MILLION, at("2026-03-02T00:00:00Z"))).toMatchObject({ version: table.version });
    expect(table.cost("nobody", MILLION)).toEqual({ priced: false, costUsd: null, model: "nobody", reason: "unpriced_model" });
  });

  it("lists the entry's prices sorted by date", () => {
    expect(table.entries[0]!.prices.map((p) => p.effectiveFrom)).toEqual(["2026-01-01", "2026-03-01"]);
  });

  it("prices the built-in DeepSeek calls before and after the 2025-09-29 price cut differently", () => {
    const builtIn = loadPriceTable();
    const usage = { inputTokens: 1000, outputTokens: 1000 };
    expect(builtIn.cost("deepseek-chat", usage, at("2025-09-28T12:00:00Z")).costUsd).toBe(0.00224); // $0.56 + $1.68 per 1M
    expect(builtIn.cost("deepseek-chat", usage, at("2025-09-29T12:00:00Z")).costUsd).toBe(0.0007); // $0.28 + $0.42 per 1M
  });
});

describe("price table version", () => {
  const base = { models: [houseModel(), undated] };

  it("is 12 hex digits of a content hash, the same for the same table loaded twice", () => {
    expect(parse(base).version).toMatch(/^[0-9a-f]{12}$/);
    expect(parse(structuredClone(base)).version).toBe(parse(base).version);
    expect(loadPriceTable().version).toBe(loadPriceTable().version);
  });

  it("does not change with whitespace, key order, the order of models, aliases or prices, a comment, or how a date is spelled", () => {
    const dir = mkdtempSync(path.join(tmpdir(), "prices-version-"));
    const a = path.join(dir, "a.json");
    const b = path.join(dir, "b.json");
    writeFileSync(a, JSON.stringify(base));
    const reordered = {
      $comment: "same prices, written differently",
      models: [
        { asOf: "2026-01-01", source: "s", outputPer1M: 1, inputPer1M: 1, provider: "me", model: "flat-model" },
        {
          ...houseModel([
            { outputPer1M: 4, cachedInputPer1M: 1, inputPer1M: 2, effectiveFrom: "2026-01-01T00:00:00Z" },
            { outputPer1M: 2, inputPer1M: 1, effectiveFrom: "2026-03-01T01:00:00+01:00" },
          ]),
        },
      ],
    };
    writeFileSync(b, JSON.stringify(reordered, null, 4));
    expect(loadPriceTable(b).version).toBe(loadPriceTable(a).version);
  });

  it("changes when a price, a date or a model changes", () => {
    const v = parse(base).version;
    expect(parse({ models: [houseModel([{ ...DATED[0], outputPer1M: 2.5 }, DATED[1]]), undated] }).version).not.toBe(v);
    expect(parse({ models: [houseModel([{ ...DATED[0], effectiveFrom: "2026-03-02" }, DATED[1]]), undated] }).version).not.toBe(v);
    expect(parse({ models: [houseModel()] }).version).not.toBe(v);
  });
});

describe("bad price files", () => {
  const refusal = (models: unknown[]) => {
    try {
      parse({ models });
    } catch (err) {
      return (err as Error).message;
    }
    throw new Error("the table was accepted");
  };

  it("refuses two prices at the same time, naming the field and the model", () => {
    expect(refusal([houseModel([...DATED, { effectiveFrom: "2026-01-01", inputPer1M: 5, outputPer1M: 5 }])])).toBe(
      "prices.json: models.0.prices.2.effectiveFrom (house-model): 2026-01-01 is the same time as prices.1.effectiveFrom (2026-01-01): one price per time",
    );
    // The same instant spelled differently is the same time.
    expect(refusal([houseModel([...DATED, { effectiveFrom: "2026-03-01T00:00:00Z", inputPer1M: 5, outputPer1M: 5 }])])).toMatch(
      /^prices\.json: models\.0\.prices\.2\.effectiveFrom \(house-model\): .*same time as prices\.0\.effectiveFrom/,
    );
  });

  it("refuses an effectiveFrom that is not a real date or has no time zone", () => {
    expect(refusal([houseModel([{ effectiveFrom: "2026-02-30", inputPer1M: 1, outputPer1M: 1 }])])).toMatch(
      /^prices\.json: models\.0\.prices\.0\.effectiveFrom \(house-model\): must be a date YYYY-MM-DD/,
    );
    expect(refusal([houseModel([{ effectiveFrom: "2026-03-01T10:00:00", inputPer1M: 1, outputPer1M: 1 }])])).toMatch(
      /models\.0\.prices\.0\.effectiveFrom \(house-model\): .*with Z or an offset/,
    );
  });

  it("refuses rates given both on the entry and in dated prices", () => {
    expect(refusal([{ ...houseModel(), inputPer1M: 3 }])).toMatch(
      /^prices\.json: models\.0\.inputPer1M \(house-model\): give the rates either in inputPer1M or in prices \(dated\), not both$/,
    );
  });

  it("refuses an entry with neither rates nor prices, and an empty or malformed price list", () => {
    expect(refusal([undated, { ...undated, model: "no-price", inputPer1M: undefined }])).toMatch(
      /^prices\.json: models\.1\.inputPer1M \(no-price\): required .*unless the entry lists dated prices in prices$/,
    );
    expect(refusal([houseModel([])])).toMatch(/^prices\.json: models\.0\.prices \(house-model\): /);
    expect(refusal([houseModel([{ effectiveFrom: "2026-01-01", inputPer1M: -1, outputPer1M: 1 }])])).toMatch(
      /^prices\.json: models\.0\.prices\.0\.inputPer1M \(house-model\): /,
    );
    expect(refusal([houseModel([{ effectiveFrom: "2026-01-01", inputPer1M: 1, outputPer1M: 1, discount: 0.5 }])])).toMatch(
      /^prices\.json: models\.0\.prices\.0 \(house-model\): .*discount/,
    );
  });

  it("refuses a name listed for two models, naming the file", () => {
    expect(refusal([houseModel(), { ...undated, aliases: ["house"] }])).toBe(
      'prices.json: "house" is listed for both house-model and flat-model',
    );
  });
});
