import { mkdtempSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { ONE_OF_EACH, type ServiceName } from "@tracelane/launcher";
import { PriceTable } from "@tracelane/pricing";
import { waitFor } from "@tracelane/testkit";
import { ATTR_PRICE_VERSION, ATTR_USAGE_COST_USD } from "@tracelane/tracing/attributes";
import { apiClient } from "../support/api-client.js";
import { waitForCollectedTrace } from "../support/collected-traces.js";
import { usePipeline } from "../support/pipeline-stack.js";
import { spansOfResearch } from "../support/spans.js";

// Every service prices with one TRACELANE_PRICE_TABLE file, rewritten under the running stack.
const dir = mkdtempSync(path.join(tmpdir(), "price-versions-"));
const tableFile = path.join(dir, "prices.json");
type PriceFile = { models: Array<Record<string, unknown>> };
const builtIn = JSON.parse(readFileSync(new URL("../../packages/pricing/src/prices.json", import.meta.url), "utf8")) as PriceFile;

/** Write the table the way an operator should (a rename), so no reader ever sees half a file. */
function writeTable(json: unknown): void {
  const next = `${tableFile}.next`;
  writeFileSync(next, typeof json === "string" ? json : JSON.stringify(json, null, 2));
  renameSync(next, tableFile);
}

/** The built-in table with gpt-4.1 (the analysis' model) given a dated price list. */
const withGpt41Prices = (prices: unknown[]): PriceFile => ({
  models: builtIn.models.map((m) => {
    if (m.model !== "gpt-4.1") return m;
    const undated = Object.entries(m).filter(([k]) => !["inputPer1M", "cachedInputPer1M", "outputPer1M"].includes(k));
    return { ...Object.fromEntries(undated), prices };
  }),
});
const v1Table = builtIn;
// From 2026-01-01 gpt-4.1 costs ten times its list price: calls made now are priced at it.
const v2Table = withGpt41Prices([
  { effectiveFrom: "2025-04-14", inputPer1M: 2, cachedInputPer1M: 0.5, outputPer1M: 8 },
  { effectiveFrom: "2026-01-01", inputPer1M: 20, cachedInputPer1M: 5, outputPer1M: 80 },
]);
const v1 = PriceTable.parse(v1Table).version;
const v2 = PriceTable.parse(v2Table).version;
writeTable(v1Table);

const run = usePipeline({
  replicas: ONE_OF_EACH,
  env: { TRACELANE_PRICE_TABLE: tableFile, COLLECTOR_BLOCK_MS: "100" },
});

/** Every service that prices calls, with where its /metrics is. */
const PRICING: readonly ServiceName[] = ["api", "trace-collector", "analysis-worker", "factcheck-worker", "synthesis-worker"];
const pricingProcesses = () => PRICING.flatMap((name) => run.stack.byService(name));

/** The version each pricing process says is in force (tracelane_price_table_info), by process. */
async function liveVersions(): Promise<Record<string, string | undefined>> {
  const out: Record<string, string | undefined> = {};
  for (const p of pricingProcesses()) {
    const text = await (await fetch(`http://127.0.0.1:${p.port}/metrics`)).text();
    out[p.name] = /^tracelane_price_table_info\{tracelane_price_version="([0-9a-f]{12})"\} 1$/m.exec(text)?.[1];
  }
  return out;
}
const everywhere = (version: string) => Object.fromEntries(pricingProcesses().map((p) => [p.name, version]));

/** One research end to end, and its trace as the collector assembled it. */
async function research(query: string) {
  const base = run.stack.apiUrl!;
  const api = apiClient(base);
  const { body } = await api.submit({ query });
  const view = await api.waitForFinal(body.id, 60_000);
  expect(view.status).toBe("completed");
  const trace = await waitForCollectedTrace(base, body.traceId, spansOfResearch(view), 30_000);
  const calls = trace.spans.filter((s) => s.call);
  expect(calls.length).toBeGreaterThan(3);
  return { summary: trace.body.summary, calls };
}

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

describe("price table versions", () => {
  it("records the table's version on every call span, on each call the collector priced, and on the trace summary", async () => {
    expect(await liveVersions()).toEqual(everywhere(v1));
    const { summary, calls } = await research("What does a heat pump cost to run in winter?");
    expect(summary.priceVersions).toEqual([v1]);
    for (const s of calls) {
      expect(s.attributes[ATTR_PRICE_VERSION], s.name).toBe(v1); // set by the worker's chat client
      expect(s.call!.priceVersion, s.name).toBe(v1); // the collector's own pricing
    }
    expect(summary.calls.map((c) => c.priceVersion)).toEqual(summary.calls.map(() => v1));
  });

  it("prices new calls with a rewritten table and its version, in every service, without a restart", async () => {
    const pids = pricingProcesses().map((p) => p.child.pid);
    writeTable(v2Table);
    await waitFor(async () => JSON.stringify(await liveVersions()) === JSON.stringify(everywhere(v2)), {
      timeoutMs: 20_000,
      what: `every pricing service on version ${v2}`,
    });
    expect(pricingProcesses().map((p) => p.child.pid)).toEqual(pids);

    const { summary, calls } = await research("Why do tides differ between coasts?");
    expect(summary.priceVersions).toEqual([v2]);
    const analysis = calls.filter((s) => s.call!.model === "gpt-4.1");
    expect(analysis.length).toBeGreaterThan(0);
    for (const s of calls) {
      expect(s.attributes[ATTR_PRICE_VERSION], s.name).toBe(v2);
      expect(s.call!.priceVersion, s.name).toBe(v2);
    }
    for (const s of analysis) {
      const c = s.call!;
      // Ten times the list price, by the price dated 2026-01-01, in nano-dollars.
      const nano = (c.inputTokens - c.cachedInputTokens) * 20_000 + c.cachedInputTokens * 5_000 + c.outputTokens * 80_000;
      expect(c.costUsd).toBe(nano / 1e9);
      // The worker priced it the same (its span's cost, which the research's spend adds up).
      expect(s.attributes[ATTR_USAGE_COST_USD]).toBe(nano / 1e9);
    }
  });

  it("refuses a broken table with the reason in each service's log and keeps the one in force; SIGHUP reloads too", async () => {
    writeTable(
      withGpt41Prices([
        { effectiveFrom: "2026-01-01", inputPer1M: 20, outputPer1M: 80 },
        { effectiveFrom: "2026-01-01", inputPer1M: 2, outputPer1M: 8 },
      ]),
    );
    const reason = `${tableFile}: models.0.prices.1.effectiveFrom (gpt-4.1): 2026-01-01 is the same time as prices.0.effectiveFrom (2026-01-01): one price per time`;
    const refusal = new RegExp(escape(`price table ${tableFile} refused, version ${v2} stays in force: ${reason}`));
    await Promise.all(pricingProcesses().map((p) => p.waitForOutput(refusal, 20_000)));
    expect(await liveVersions()).toEqual(everywhere(v2));

    // SIGHUP reads the file again (and does not stop the service): refused again, said again.
    const collector = run.stack.byService("trace-collector")[0]!;
    const bySighup = new RegExp(`"trigger":"SIGHUP"[^\\n]*${escape(reason)}`);
    expect(collector.output()).not.toMatch(bySighup);
    collector.child.kill("SIGHUP");
    await collector.waitForOutput(bySighup, 10_000);
    expect(collector.child.exitCode).toBeNull();

    const { summary } = await research("How do bees find their way home?");
    expect(summary.priceVersions).toEqual([v2]);
  });
});
