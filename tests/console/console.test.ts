import { mkdirSync } from "node:fs";
import path from "node:path";
import { randomBytes } from "node:crypto";
import { type Browser, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { ONE_OF_EACH } from "@tracelane/launcher";
import { RESEARCH_PIPELINE } from "@tracelane/pipeline";
import { loadPriceTable } from "@tracelane/pricing";
import { flattenTree } from "@tracelane/trace-store";
import { REPO_ROOT, waitFor } from "@tracelane/testkit";
import { apiClient } from "../support/api-client.js";
import { fetchTrace, type TraceResponse } from "../support/collected-traces.js";
import { startPipeline } from "../support/pipeline-stack.js";
import { launchChromium } from "../support/browser.js";

// The web console in Debian's Chromium, against the whole stack as OS processes: the api serving
// /ui, the workers, the collector and the simulator on the run's Redis.
const SCREENSHOTS = path.join(REPO_ROOT, ".tmp/screenshots");
const JAEGER_UI = "http://localhost:16686";
const STAGES = RESEARCH_PIPELINE.stages.map((s) => s.stage);
const LAST_QUEUE = RESEARCH_PIPELINE.stages[RESEARCH_PIPELINE.stages.length - 1]!.queue;
// One rate-limited attempt on the factcheck model: a retry group and a `retries` anomaly to show.
const QUERY = "Why do heat pumps lose efficiency in cold weather? [[sim:fault=429;model=gemini-2.5-flash;times=1]]";

let stack: Awaited<ReturnType<typeof startPipeline>>;
let browser: Browser;
let base: string;

beforeAll(async () => {
  mkdirSync(SCREENSHOTS, { recursive: true });
  [stack, browser] = await Promise.all([
    startPipeline(inject("redisUrl"), {
      replicas: ONE_OF_EACH,
      // The report takes a moment to write, so the page can be seen streaming it.
      env: { LLM_SIM_MODEL_LATENCY: JSON.stringify({ "deepseek-v3.2": { baseMs: 1500, jitterMs: 0 } }) },
      serviceEnv: { api: { JAEGER_UI_URL: JAEGER_UI } },
    }),
    launchChromium(),
  ]);
  base = stack.apiUrl!;
}, 90_000);

afterAll(async () => {
  await browser?.close();
  await stack?.stop();
});

/** A page that remembers its script errors and Content-Security-Policy violations (scriptErrors). */
async function open(path: string, width = 1280): Promise<Page> {
  const page = await browser.newPage({ viewport: { width, height: 900 } });
  const errors: string[] = [];
  page.on("pageerror", (err) => errors.push(err.message));
  // The api serves the console with a strict Content-Security-Policy: nothing the app does may break it.
  page.on("console", (msg) => {
    if (msg.type() === "error" && msg.text().includes("Content Security Policy")) errors.push(msg.text());
  });
  (page as Page & { scriptErrors: string[] }).scriptErrors = errors;
  await page.goto(`${base}${path}`);
  return page;
}
const scriptErrors = (page: Page) => (page as Page & { scriptErrors: string[] }).scriptErrors;

const screenshot = (page: Page, name: string) => page.screenshot({ path: path.join(SCREENSHOTS, `${name}.png`), fullPage: true });

/** Nothing wider than the window: no sideways scrolling. */
// (Functions passed to evaluate() run in the page; the tests' tsconfig has no DOM types.)
const horizontalOverflow = (page: Page) =>
  page.evaluate(() => {
    const w = globalThis as any;
    return w.document.documentElement.scrollWidth - w.innerWidth;
  });

/** Wait until the collector has the whole trace: the last stage's queue span (the last to end) is in it. */
async function completeTrace(traceId: string): Promise<TraceResponse> {
  return waitFor(
    async () => {
      const got = await fetchTrace(base, traceId);
      const spans = got ? flattenTree(got.body.tree) : [];
      const done = got && got.body.summary.callCount >= STAGES.length && spans.some((s) => s.name === `process ${LAST_QUEUE}`);
      return done && got.body.summary.spanCount === spans.length ? got.body : undefined;
    },
    { timeoutMs: 20_000, intervalMs: 100, what: `trace ${traceId} complete at the collector` },
  );
}

describe("the web console at /ui", () => {
  it("says what to do when the store is empty, and answers / and deep links", async () => {
    const root = await fetch(`${base}/`, { redirect: "manual" });
    expect(root.status).toBe(302);
    expect(root.headers.get("location")).toBe("/ui/");

    const page = await open("/ui/");
    await page.getByTestId("empty").waitFor();
    expect(await page.getByTestId("empty").innerText()).toContain("No researches yet");
    await screenshot(page, "console-empty");

    await page.getByRole("link", { name: "Costs" }).click();
    await page.waitForURL("**/ui/costs");
    await page.getByText("No model calls in the last 24 hours").waitFor();

    await page.getByRole("link", { name: "Anomalies" }).click();
    await page.getByText("No anomalies found").waitFor();
    expect(scriptErrors(page)).toEqual([]);
    await page.close();
  });

  it("shows a clear page for an unknown trace and the api's message for a malformed id", async () => {
    const unknown = randomBytes(16).toString("hex");
    const page = await open(`/ui/traces/${unknown}`);
    await page.getByTestId("no-such-trace").waitFor();
    expect(await page.getByRole("heading", { level: 1 }).innerText()).toBe("No such trace");
    expect(await page.getByTestId("no-such-trace").innerText()).toContain(unknown);
    await screenshot(page, "console-no-such-trace");

    await page.goto(`${base}/ui/traces/not-a-trace-id`);
    const error = page.getByTestId("api-error");
    await error.waitFor();
    // The api's own 400 message, as it wrote it.
    expect(await error.innerText()).toContain("is not a trace id: expected 32 hexadecimal characters");
    expect(await error.innerText()).toContain("HTTP 400");
    await page.close();
  });

  it("shows an error from the api as its message when a submit is refused", async () => {
    const page = await open("/ui/");
    await page.locator("textarea[name=query]").fill("A question with an impossible budget");
    await page.locator("input[name=maxCostUsd]").fill("0");
    await page.getByRole("button", { name: "Run research" }).click();
    const error = page.getByTestId("api-error");
    await error.waitFor();
    expect(await error.innerText()).toContain("maxCostUsd must be greater than 0");
    expect(await error.innerText()).toContain("The research was not submitted");
    await screenshot(page, "console-submit-refused");
    await page.close();
  });

  it("runs a research from the form with live stages, then shows its trace, costs and anomalies", async () => {
    const page = await open("/ui/");
    await page.locator("textarea[name=query]").fill(QUERY);
    await page.getByRole("button", { name: "Run research" }).click();

    // Live progress over SSE: every stage reaches completed, then the research does.
    const live = page.getByTestId("live-research");
    await live.waitFor();
    // The api's cost estimate, under the form: this stack has no history yet, and the page says so.
    expect(await page.getByTestId("estimate").innerText()).toMatch(
      /^No cost estimate yet: No estimate rather than a guess: the analysis stage has 0 completed researches/,
    );
    // The report as it is being written: streamed text while the synthesis runs.
    const report = page.getByTestId("live-report");
    await page.locator("[data-testid=live-report][data-streaming=true]").waitFor({ timeout: 30_000 });
    await waitFor(async () => ((await report.locator("pre").innerText()).length > 20 ? true : undefined), { what: "streamed report text" });
    expect(await page.locator("[data-testid=live-stage][data-stage=synthesis]").getAttribute("data-status")).toBe("running");
    await screenshot(page, "console-live-streaming");
    for (const stage of STAGES) {
      await page.locator(`[data-testid=live-stage][data-stage=${stage}][data-status=completed]`).waitFor({ timeout: 30_000 });
    }
    await page.getByTestId("live-final").waitFor();
    expect(await live.getAttribute("data-status")).toBe("completed");
    const researchId = (await live.getAttribute("data-research-id"))!;
    const view = await apiClient(base).get(researchId);
    expect(view.status).toBe("completed");
    // Each claim under the fact-check, with its verdict; then the report as checkpointed.
    const claims = view.stages.factcheck.claims!;
    const shown = page.getByTestId("live-claim");
    await waitFor(async () => ((await shown.count()) === claims.length ? true : undefined), { what: "every claim on the page" });
    expect(await shown.evaluateAll((rows) => rows.map((r) => r.getAttribute("data-verdict")))).toEqual(claims.map((c) => c.verdict));
    expect(await shown.first().innerText()).toContain(claims[0]!.verdict!);
    expect(await report.getAttribute("data-streaming")).toBe("false");
    expect((await report.locator("pre").innerText()).trim()).toBe(view.result!.finalReport.trim());
    // The collector has the whole trace (and so its anomalies) once the last stage's queue span is in.
    const trace = await completeTrace(view.traceId!);
    const spans = flattenTree(trace.tree);

    // The list below reloads when the research finishes: it is there with its models; once refreshed
    // (after the collector found the retry), with its anomaly badge.
    const listed = page.locator(`tr[data-research-id="${researchId}"]`);
    await listed.waitFor();
    for (const stage of STAGES) expect(await listed.innerText()).toContain(view.stages[stage].model!);
    const filters = page.getByRole("form", { name: "filters" });
    await filters.getByRole("button", { name: "Refresh" }).click();
    await listed.locator("[data-anomaly=retries]").waitFor();
    await screenshot(page, "console-researches");

    // Filters: anomaly and model keep it, a status it does not have leaves a message saying so.
    await filters.locator("select[name=anomaly]").selectOption("retries");
    await filters.locator("select[name=model]").selectOption(view.stages[STAGES[0]!].model!);
    await listed.waitFor();
    expect(page.url()).toContain("anomaly=retries");
    await filters.locator("select[name=status]").selectOption("failed");
    await page.getByText("No research matches these filters").waitFor();
    await filters.locator("select[name=status]").selectOption("");
    await listed.waitFor();

    // The trace page: one row per span of the api's trace, the same total cost.
    await page.getByTestId("open-trace").click();
    await page.waitForURL(`**/ui/traces/${view.traceId}`);
    await page.getByTestId("waterfall").waitFor();
    const rowIds = await page.locator("[data-span-id]").evaluateAll((rows) => rows.map((r) => r.getAttribute("data-span-id")));
    expect(rowIds.sort()).toEqual(spans.map((s) => s.spanId).sort());

    const cost = page.getByTestId("trace-cost");
    expect(Number(await cost.getAttribute("data-usd"))).toBe(trace.summary.costUsd);
    const shownCost = Number((await cost.innerText()).replace(/[$,]/g, ""));
    expect(Math.abs(shownCost - trace.summary.costUsd) / trace.summary.costUsd).toBeLessThan(0.01);
    expect(await page.getByTestId("trace-span-count").innerText()).toBe(String(spans.length));
    // The price table version its calls were priced with (the built-in table's).
    expect(trace.summary.priceVersions).toEqual([loadPriceTable().version]);
    expect(await page.getByTestId("trace-price-versions").innerText()).toContain(loadPriceTable().version);
    expect(await page.getByTestId("jaeger-link").getAttribute("href")).toBe(`${JAEGER_UI}/trace/${view.traceId}`);
    // The token flow: one row per stage of the summary's, in pipeline order, with its numbers.
    const flowRows = page.getByTestId("token-flow").locator("tbody tr");
    const flow = trace.summary.tokenFlow!;
    expect(await flowRows.evaluateAll((rows) => rows.map((r) => r.getAttribute("data-stage")))).toEqual(STAGES);
    expect(await flowRows.evaluateAll((rows) => rows.map((r) => r.querySelector("[data-growth]")!.getAttribute("data-growth")))).toEqual(
      flow.map((s) => String(s.growth ?? "")),
    );
    expect(await flowRows.nth(1).innerText()).toContain(flow[1]!.maxCallInputTokens.toLocaleString("en-US"));

    // The retried call: its attempts grouped under it, the anomaly with its recommendation on its row.
    const retried = trace.anomalies.find((a: any) => a.type === "retries") as { spanId: string; recommendation: string } | undefined;
    expect(retried).toBeDefined();
    const callRow = page.locator(`[data-span-id="${retried!.spanId}"]`);
    expect(await callRow.getByTestId("retry-group").innerText()).toContain("2 attempts, 1 failed (429 → 200)");
    expect(await callRow.getByTestId("anomaly-note").innerText()).toContain(retried!.recommendation);
    const attempts = spans.filter((s) => s.parentSpanId === retried!.spanId);
    expect(await page.locator(".wf-row.in-retry-group").count()).toBe(attempts.length);
    expect(await horizontalOverflow(page)).toBeLessThanOrEqual(0);
    // A trace that just ended is read again for a few seconds; the picture is taken once it settled.
    await page.getByTestId("trace-refreshing").waitFor({ state: "detached", timeout: 20_000 });
    expect(await page.locator("[data-span-id]").count()).toBe(spans.length);
    await screenshot(page, "console-trace");

    // Costs: four charts drawn on canvases with data, and the per-model latency table.
    await page.getByRole("link", { name: "Costs" }).click();
    await page.getByTestId("model-table").waitFor();
    const charts = page.locator("figure.chart");
    // Each chart is drawn once its figure is on the page (an effect): wait for all four to say so.
    await page.locator("figure.chart[data-drawn=true]").nth(3).waitFor();
    expect(await charts.count()).toBe(4);
    for (const chart of await charts.all()) {
      expect(Number(await chart.getAttribute("data-points"))).toBeGreaterThan(0);
      const inked = await chart.locator("canvas").evaluate((c: any) => {
        const data: Uint8ClampedArray = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
        let n = 0;
        for (let i = 3; i < data.length; i += 4) if (data[i]! > 0) n++;
        return n;
      });
      expect(inked).toBeGreaterThan(500);
    }
    const stats = (await (await fetch(`${base}/v1/stats/costs`)).json()) as { costUsd: number; retryCostUsd: number };
    expect(Number(await page.getByTestId("costs-total").getAttribute("data-usd"))).toBe(stats.costUsd);
    expect(Number(await page.getByTestId("costs-retry").getAttribute("data-usd"))).toBe(stats.retryCostUsd);
    const modelTable = await page.getByTestId("model-table").innerText();
    for (const stage of STAGES) expect(modelTable).toContain(view.stages[stage].model!);
    expect(await horizontalOverflow(page)).toBeLessThanOrEqual(0);
    await screenshot(page, "console-costs");

    // Anomalies: the feed links to the span, whose row is highlighted.
    await page.getByRole("link", { name: "Anomalies" }).click();
    const item = page.locator(`.feed-item[data-anomaly=retries]`);
    await item.first().waitFor();
    await screenshot(page, "console-anomalies");
    await item.first().getByTestId("anomaly-link").click();
    await page.locator(`.wf-row.highlight[data-span-id="${retried!.spanId}"]`).waitFor();
    expect(page.url()).toContain(`#span-${retried!.spanId}`);
    expect(scriptErrors(page)).toEqual([]);
    await page.close();

    // Usable at 800 px: no sideways scrolling on any page.
    const pages = {
      "/ui/": "research-list",
      [`/ui/traces/${view.traceId}`]: "waterfall",
      "/ui/costs": "model-table",
      "/ui/anomalies": "anomaly-feed",
    };
    for (const [p, loaded] of Object.entries(pages)) {
      const narrow = await open(p, 800);
      await narrow.getByTestId(loaded).waitFor();
      expect(await horizontalOverflow(narrow), `${p} at 800 px`).toBeLessThanOrEqual(0);
      if (loaded === "waterfall") await screenshot(narrow, "console-trace-800");
      expect(scriptErrors(narrow), p).toEqual([]);
      await narrow.close();
    }

    // The console's own requests (pages, assets, api reads) left no trace in the list: only researches.
    const all = (await (await fetch(`${base}/v1/traces?kind=all&limit=500`)).json()) as { traces: { rootName: string }[] };
    expect(all.traces.map((t) => t.rootName).filter((n) => !n.startsWith("POST "))).toEqual([]);
  });
});
