import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { REPO_ROOT } from "@tracelane/testkit";

/** A model whose 300-token context window is too small for some calls: a what-if swap to it is flagged, not priced. */
export const TINY_MODEL = "tiny-model";

/** A price file (TRACELANE_PRICE_TABLE) with the built-in table's models plus TINY_MODEL, in a fresh temp folder. */
export function priceTableWithTinyModel(name: string): string {
  const builtIn = JSON.parse(readFileSync(path.join(REPO_ROOT, "packages/pricing/src/prices.json"), "utf8")) as { models: unknown[] };
  const file = path.join(mkdtempSync(path.join(tmpdir(), `${name}-`)), "prices.json");
  writeFileSync(
    file,
    JSON.stringify({
      models: [
        ...builtIn.models,
        { model: TINY_MODEL, provider: "test", inputPer1M: 0.1, outputPer1M: 0.2, contextWindow: 300, source: "test", asOf: "2026-12-01" },
      ],
    }),
  );
  return file;
}
