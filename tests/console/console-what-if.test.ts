import { mkdirSync } from "node:fs";
import path from "node:path";
import { type Browser, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { ONE_OF_EACH } from "@tracelane/launcher";
import { REPO_ROOT } from "@tracelane/testkit";
import { apiClient } from "../support/api-client.js";
import { waitForCollectedTrace } from "../support/collected-traces.js";
import { startPipeline } from "../support/pipeline-stack.js";
import { spansOfResearch } from "../support/spans.js";
import { launchChromium } from "../support/browser.js";
import { priceTableWithTinyModel } from "../support/price-tables.js";

// The costs page's what-if panel in Debian's Chromium, against the whole stack as OS processes. The api's price
// table adds a model whose context window is too small for some fact-check calls, so the panel has flags to show.
const SCREENSHOTS = path.join(REPO_ROOT, ".tmp/screenshots");
const tableFile = priceTableWithTinyModel("console-what-if");

let stack: Awaited<ReturnType<typeof startPipeline>>;
let browser: Browser;
let base: string;

beforeAll(async () => {
  mkdirSync(SCREENSHOTS, { recursive: true });
  [stack, browser] = await Promise.all([
    startPipeline(inject("redisUrl"), {
      replicas: ONE_OF_EACH,
      env: { COLLECTOR_BLOCK_MS: "100" },
      serviceEnv: { api: { TRACELANE_PRICE_TABLE: tableFile } },
    }),
    launchChromium(),
  ]);
  base = stack.apiUrl!;
}, 90_000);

afterAll(async () => {
  await browser?.close();
  await stack?.stop();
});

interface Answer {
  traces: number;
  actualCostUsd: number;
  whatIfCostUsd: number;
  savingUsd: number;
  byStage: Record<string, { model: string; whatIfModel: string; calls: number; actualCostUsd: number; whatIfCostUsd: number }>;
  flaggedCalls: number;
  assumptions: string[];
}

const usdOf = async (page: Page, testid: string) => Number(await page.getByTestId(testid).getAttribute("data-usd"));

describe("the costs page's what-if panel", () => {
  it("prices the window with a stage on another model: totals, per-stage rows, flags and assumptions as the api answers", async () => {
    const api = apiClient(base);
    const { body } = await api.submit({ query: "What does a heat pump cost to run in winter?" });
    const view = await api.waitForFinal(body.id, 60_000);
    expect(view.status).toBe("completed");
    await waitForCollectedTrace(base, body.traceId, spansOfResearch(view), 30_000);

    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    const errors: string[] = [];
    page.on("pageerror", (err) => errors.push(err.message));
    page.on("console", (msg) => {
      if (msg.type() === "error" && msg.text().includes("Content Security Policy")) errors.push(msg.text());
    });
    await page.goto(`${base}/ui/costs`);
    const panel = page.getByTestId("what-if");
    await panel.waitFor();
    // The stages of the window (costliest first), the fact-check picked; the models in use offered.
    expect((await panel.locator("select[name=stage] option").allInnerTexts()).sort()).toEqual(["analysis", "factcheck", "synthesis"]);
    expect(await panel.locator("select[name=stage]").inputValue()).toBe("factcheck");
    expect(await panel.locator("#what-if-models option").evaluateAll((os) => os.map((o) => o.getAttribute("value")))).toEqual([
      "deepseek-v3.2",
      "gemini-2.5-flash",
      "gpt-4.1",
    ]);
    expect(await panel.locator("input[name=model]").inputValue()).toBe("deepseek-v3.2");
    await panel.getByRole("button", { name: "Price it" }).click();
    await page.getByTestId("what-if-answer").waitFor();

    const since = await page.evaluate(() => new Date(Date.now() - 24 * 3_600_000).toISOString());
    const want = (await (await fetch(`${base}/v1/stats/what-if?swap=factcheck:deepseek-v3.2&since=${since}`)).json()) as Answer;
    expect(want.traces).toBe(1);
    expect(await usdOf(page, "what-if-actual")).toBe(want.actualCostUsd);
    expect(await usdOf(page, "what-if-cost")).toBe(want.whatIfCostUsd);
    expect(await usdOf(page, "what-if-saving")).toBe(Math.abs(want.savingUsd));
    for (const [stage, s] of Object.entries(want.byStage)) {
      const row = page.locator(`[data-testid=what-if-table] tr[data-stage=${stage}]`);
      const text = await row.innerText();
      expect(text).toContain(s.model === s.whatIfModel ? `${s.model} (kept)` : `${s.model} → ${s.whatIfModel}`);
      const cells = await row.locator("[data-usd]").evaluateAll((els) => els.map((e) => Number(e.getAttribute("data-usd"))));
      expect(cells.slice(0, 2)).toEqual([s.actualCostUsd, s.whatIfCostUsd]);
    }
    expect(await page.getByTestId("what-if-assumptions").locator("li").allInnerTexts()).toEqual(want.assumptions);
    expect(await page.getByTestId("what-if-flags").count()).toBe(0);
    await panel.screenshot({ path: path.join(SCREENSHOTS, "console-what-if.png") });

    // A model too small for some calls: they are flagged, each linking to its trace.
    await panel.locator("input[name=model]").fill("tiny-model");
    await panel.getByRole("button", { name: "Price it" }).click();
    await page.getByTestId("what-if-flags").waitFor();
    const tiny = (await (await fetch(`${base}/v1/stats/what-if?swap=factcheck:tiny-model&since=${since}`)).json()) as Answer;
    expect(tiny.flaggedCalls).toBeGreaterThan(0);
    expect(await page.getByTestId("what-if-flag").count()).toBe(Math.min(tiny.flaggedCalls, 100));
    expect(await page.getByTestId("what-if-flags").innerText()).toContain(`${tiny.flaggedCalls} call`);
    expect(await page.getByTestId("what-if-flag").first().locator("a").getAttribute("href")).toContain(`/ui/traces/${body.traceId}#span-`);
    await panel.screenshot({ path: path.join(SCREENSHOTS, "console-what-if-flags.png") });

    // A model the price table does not list: the api's message, as it wrote it.
    await panel.locator("input[name=model]").fill("no-such-model");
    await panel.getByRole("button", { name: "Price it" }).click();
    const error = panel.getByTestId("api-error");
    await error.waitFor();
    expect(await error.innerText()).toContain('"no-such-model" is not in the price table');
    expect(await error.innerText()).toContain("HTTP 400 · unknown_model");
    expect(errors).toEqual([]);
    await page.close();
  });
});
