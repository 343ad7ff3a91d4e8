import { mkdirSync } from "node:fs";
import path from "node:path";
import { randomBytes } from "node:crypto";
import { type Browser, type BrowserContext, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { ONE_OF_EACH } from "@tracelane/launcher";
import { RESEARCH_PIPELINE } from "@tracelane/pipeline";
import { REPO_ROOT } from "@tracelane/testkit";
import { startPipeline } from "../support/pipeline-stack.js";
import { launchChromium } from "../support/browser.js";

// The console in Debian's Chromium against an api with API keys: /ui itself answers a browser with a
// Basic challenge (its login prompt takes the key as password), and the console asks for the key it
// sends as Bearer on every call, the event stream included, keeping it for the tab only.
const SCREENSHOTS = path.join(REPO_ROOT, ".tmp/screenshots");
const STAGES = RESEARCH_PIPELINE.stages.map((s) => s.stage);
const KEY = randomBytes(20).toString("hex");
const STORAGE_KEY = "tracelane.apiKey";

let stack: Awaited<ReturnType<typeof startPipeline>>;
let browser: Browser;
let base: string;

beforeAll(async () => {
  mkdirSync(SCREENSHOTS, { recursive: true });
  [stack, browser] = await Promise.all([
    startPipeline(inject("redisUrl"), {
      replicas: { ...ONE_OF_EACH, "trace-collector": 0 },
      serviceEnv: { api: { API_KEYS: `${KEY} console-user member` } },
    }),
    launchChromium(),
  ]);
  base = stack.apiUrl!;
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await stack?.stop();
});

/** A tab that remembers script errors and CSP violations; `password` is what the user types into the browser's login prompt. */
async function openTab(password: string | undefined): Promise<{ context: BrowserContext; page: Page; errors: string[] }> {
  const context = await browser.newContext({
    viewport: { width: 1280, height: 900 },
    ...(password !== undefined ? { httpCredentials: { username: "me", password } } : {}),
  });
  const page = await context.newPage();
  const errors: string[] = [];
  page.on("pageerror", (err) => errors.push(err.message));
  page.on("console", (msg) => {
    if (msg.type() === "error" && msg.text().includes("Content Security Policy")) errors.push(msg.text());
  });
  return { context, page, errors };
}

const stored = (page: Page) => page.evaluate((k) => (globalThis as any).sessionStorage.getItem(k) as string | null, STORAGE_KEY);

describe("the console with API keys", () => {
  it("/ui answers a browser without the key 401 with a Basic challenge, so the browser asks for it", async () => {
    const { context, page } = await openTab(undefined);
    // Headless, nobody answers the browser's prompt: the navigation ends without credentials to give.
    const [res, navigation] = await Promise.all([page.waitForResponse(`${base}/ui/`), page.goto(`${base}/ui/`).catch((err: Error) => err)]);
    expect(res.status()).toBe(401);
    expect(await res.headerValue("www-authenticate")).toMatch(/^Basic realm="tracelane"/);
    expect(String(navigation)).toMatch(/ERR_INVALID_AUTH_CREDENTIALS/);
    // A wrong password typed into the prompt is refused the same way.
    const wrong = await openTab("not-the-key-0000000000");
    const [wrongRes] = await Promise.all([
      wrong.page.waitForResponse(`${base}/ui/`),
      wrong.page.goto(`${base}/ui/`).catch(() => undefined),
    ]);
    expect(wrongRes.status()).toBe(401);
    await Promise.all([context.close(), wrong.context.close()]);
  });

  it("asks for the key, refuses a wrong one, then runs a research with live stages over the keyed event stream", async () => {
    const { context, page, errors } = await openTab(KEY);
    const res = await page.goto(`${base}/ui/`);
    expect(res!.status()).toBe(200);
    const prompt = page.getByTestId("key-prompt");
    await prompt.waitFor();
    expect(await prompt.innerText()).toContain("keeps it for this tab only");
    await page.screenshot({ path: path.join(SCREENSHOTS, "console-key-prompt.png"), fullPage: true });

    await page.getByTestId("key-input").fill("not-the-key-0000000000");
    await page.getByTestId("key-submit").click();
    await page.getByTestId("key-rejected").waitFor();
    await page.screenshot({ path: path.join(SCREENSHOTS, "console-key-rejected.png"), fullPage: true });

    await page.getByTestId("key-input").fill(KEY);
    await page.getByTestId("key-submit").click();
    await page.getByTestId("empty").waitFor();
    expect(await stored(page)).toBe(KEY);

    await page.locator("textarea[name=query]").fill("Why do heat pumps lose efficiency in cold weather?");
    await page.getByRole("button", { name: "Run research" }).click();
    const live = page.getByTestId("live-research");
    await live.waitFor();
    // Each stage's row is re-read on each event: they complete on screen only if the stream carries the key.
    for (const stage of STAGES) {
      await page.locator(`[data-testid=live-stage][data-stage=${stage}][data-status=completed]`).waitFor({ timeout: 30_000 });
    }
    await page.getByTestId("live-final").waitFor();
    expect(await live.getAttribute("data-status")).toBe("completed");

    // The key lasts for the tab: a reload asks nothing.
    await page.reload();
    await page.getByTestId("research-list").waitFor();
    expect(await page.getByTestId("key-prompt").count()).toBe(0);
    expect(errors).toEqual([]);
    await context.close();
  }, 90_000);

  it("forgets the key on request, and another tab asks for it again", async () => {
    const first = await openTab(KEY);
    await first.page.goto(`${base}/ui/`);
    await first.page.getByTestId("key-input").fill(KEY);
    await first.page.getByTestId("key-submit").click();
    await first.page.getByTestId("forget-key").click();
    await first.page.getByTestId("key-prompt").waitFor();
    expect(await stored(first.page)).toBeNull();

    const second = await openTab(KEY);
    await second.page.goto(`${base}/ui/costs`);
    await second.page.getByTestId("key-prompt").waitFor();
    expect(await stored(second.page)).toBeNull();
    await Promise.all([first.context.close(), second.context.close()]);
  });
});
