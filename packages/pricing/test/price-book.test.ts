import { mkdtempSync, renameSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { PriceBook, PriceTable, type PriceBookLogger } from "@tracelane/pricing";

const MILLION = { inputTokens: 1_000_000, outputTokens: 0 };
const table = (inputPer1M: number) => ({
  models: [{ model: "house-model", provider: "me", inputPer1M, outputPer1M: 1, source: "contract", asOf: "2026-01-01" }],
});
const versionOf = (json: unknown) => PriceTable.parse(json).version;

function recordingLogger() {
  const lines: Array<{ level: "info" | "error"; obj: Record<string, unknown>; msg: string }> = [];
  const logger: PriceBookLogger = {
    info: (obj, msg = "") => lines.push({ level: "info", obj: obj as Record<string, unknown>, msg }),
    error: (obj, msg = "") => lines.push({ level: "error", obj: obj as Record<string, unknown>, msg }),
  };
  return { logger, lines };
}

async function until<T>(check: () => T | undefined | false, what: string, timeoutMs = 5_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const books: PriceBook[] = [];
afterEach(() => {
  for (const b of books.splice(0)) b.close();
});

function setup(initial: unknown = table(1)) {
  const dir = mkdtempSync(path.join(tmpdir(), "price-book-"));
  const file = path.join(dir, "prices.json");
  writeFileSync(file, JSON.stringify(initial));
  const { logger, lines } = recordingLogger();
  const book = new PriceBook({ path: file, logger, settleMs: 20 });
  books.push(book);
  return { dir, file, book, lines };
}

describe("price book", () => {
  it("loads the file and says which version is in force", () => {
    const { file, book, lines } = setup();
    expect(book.version).toBe(versionOf(table(1)));
    expect(book.cost("house-model", MILLION)).toMatchObject({ costUsd: 1, version: book.version });
    expect(lines).toEqual([
      {
        level: "info",
        obj: { priceTable: file, priceVersion: book.version, models: 1 },
        msg: `price table ${file}: version ${book.version} in force`,
      },
    ]);
  });

  it("prices new calls with a rewritten file, seen by its watch, without a restart", async () => {
    const { file, book, lines } = setup();
    const v1 = book.version;
    writeFileSync(file, JSON.stringify(table(2)));
    const v2 = versionOf(table(2));
    await until(() => book.version === v2, "the rewritten table in force");
    expect(book.cost("house-model", MILLION)).toMatchObject({ costUsd: 2, version: v2 });
    expect(lines.at(-1)).toMatchObject({
      level: "info",
      obj: { priceTable: file, priceVersion: v2, previousVersion: v1, trigger: "watch" },
      msg: `price table ${file} reloaded: version ${v2} in force (was ${v1})`,
    });
  });

  it("sees a file replaced by rename (how editors and ConfigMaps write)", async () => {
    const { dir, file, book } = setup();
    const next = path.join(dir, "prices.json.tmp");
    writeFileSync(next, JSON.stringify(table(3)));
    renameSync(next, file);
    await until(() => book.version === versionOf(table(3)), "the renamed-in table in force");
    // And the watch carries on after the rename.
    writeFileSync(file, JSON.stringify(table(4)));
    await until(() => book.version === versionOf(table(4)), "a later rewrite in force");
  });

  it("refuses a broken file with the reason naming the file and field, and keeps the table in force", async () => {
    const { file, book, lines } = setup();
    const v1 = book.version;
    writeFileSync(
      file,
      JSON.stringify({
        models: [
          {
            ...table(1).models[0],
            inputPer1M: undefined,
            outputPer1M: undefined,
            prices: [
              { effectiveFrom: "2026-01-01", inputPer1M: 1, outputPer1M: 1 },
              { effectiveFrom: "2026-01-01", inputPer1M: 2, outputPer1M: 2 },
            ],
          },
        ],
      }),
    );
    const refusal = await until(() => lines.find((l) => l.level === "error" && /effectiveFrom/.test(l.msg)), "the refusal logged");
    const reason = `${file}: models.0.prices.1.effectiveFrom (house-model): 2026-01-01 is the same time as prices.0.effectiveFrom (2026-01-01): one price per time`;
    expect(refusal).toEqual({
      level: "error",
      obj: { priceTable: file, priceVersion: v1, reason, trigger: "watch" },
      msg: `price table ${file} refused, version ${v1} stays in force: ${reason}`,
    });
    expect(book.version).toBe(v1);
    expect(book.cost("house-model", MILLION).costUsd).toBe(1);

    // Not JSON at all: refused too, the old table still in force; SIGHUP's reload answers every time.
    writeFileSync(file, "{ not json");
    expect(book.reload("SIGHUP")).toMatchObject({ outcome: "refused", version: v1, reason: expect.stringMatching(/is not valid JSON/) });
    expect(book.reload("SIGHUP")).toMatchObject({ outcome: "refused", version: v1 });
    expect(lines.filter((l) => l.obj.trigger === "SIGHUP")).toHaveLength(2);

    // A good file again comes into force.
    writeFileSync(file, JSON.stringify(table(5)));
    expect(book.reload("SIGHUP")).toEqual({ outcome: "loaded", version: versionOf(table(5)), previousVersion: v1 });
  });

  it("keeps the table when the file disappears", () => {
    const { dir, book } = setup();
    const v1 = book.version;
    renameSync(path.join(dir, "prices.json"), path.join(dir, "elsewhere.json"));
    expect(book.reload()).toMatchObject({
      outcome: "refused",
      version: v1,
      reason: expect.stringMatching(/TRACELANE_PRICE_TABLE: cannot read/),
    });
    expect(book.version).toBe(v1);
  });

  it("reports an unchanged table (same content, written differently) without swapping it", () => {
    const { file, book } = setup();
    const before = book.current;
    writeFileSync(file, JSON.stringify(table(1), null, 2));
    expect(book.reload()).toEqual({ outcome: "unchanged", version: before.version });
    expect(book.current).toBe(before);
  });

  it("stops watching when closed", async () => {
    const { file, book } = setup();
    const v1 = book.version;
    book.close();
    writeFileSync(file, JSON.stringify(table(2)));
    await new Promise((r) => setTimeout(r, 300));
    expect(book.version).toBe(v1);
  });

  it("fails at construction on a bad file (a boot failure), naming the file and field", () => {
    const dir = mkdtempSync(path.join(tmpdir(), "price-book-"));
    const file = path.join(dir, "prices.json");
    writeFileSync(file, JSON.stringify({ models: [{ ...table(1).models[0], inputPer1M: "cheap" }] }));
    expect(() => new PriceBook({ path: file, logger: recordingLogger().logger })).toThrow(`${file}: models.0.inputPer1M (house-model): `);
  });

  it("with no file, prices with the built-in table and has nothing to reload", () => {
    const { logger, lines } = recordingLogger();
    const book = new PriceBook({ logger });
    books.push(book);
    expect(book.lookup("gpt-4.1")?.inputPer1M).toBe(2);
    expect(book.reload("SIGHUP")).toEqual({ outcome: "unchanged", version: book.version });
    expect(lines.at(-1)?.msg).toBe("price table: the built-in table has nothing to reload");
  });
});
