import { mkdirSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { REPO_ROOT } from "@tracelane/launcher";
import { RESEARCH_PIPELINE } from "@tracelane/pipeline";
import { stageJobId } from "@tracelane/queue-contract";
import { waitFor } from "@tracelane/testkit";
import { apiClient, type ApiClient } from "../support/api-client.js";
import { startPipeline } from "../support/pipeline-stack.js";
import { launchChromium } from "../support/browser.js";

/** What Bull Board's JSON API says about a queue (the fields these tests read). */
interface BoardQueue {
  name: string;
  description?: string;
  readOnlyMode: boolean;
  allowRetries: boolean;
  counts: Record<string, number>;
  jobs: Array<{ id: string; failedReason?: string; attempts: number }>;
}

const ARTIFACTS = path.join(REPO_ROOT, ".tmp", "artifacts");
const analysisQueue = RESEARCH_PIPELINE.stage("analysis").queue;

/** Five processes boot one after another; on a 2-core machine shared with other test runs that can pass 60 s. */
const STACK_START_MS = 180_000;

let stack: Awaited<ReturnType<typeof startPipeline>>;
let api: ApiClient;
let board: string;

beforeAll(async () => {
  stack = await startPipeline(inject("redisUrl"));
  api = apiClient(stack.apiUrl!);
  board = `${stack.apiUrl}/admin/queues`;
}, STACK_START_MS);

afterAll(async () => {
  await stack?.stop();
});

async function boardQueues(query: Record<string, string> = {}): Promise<BoardQueue[]> {
  const res = await fetch(`${board}/api/queues?${new URLSearchParams({ page: "1", jobsPerPage: "20", ...query })}`);
  expect(res.status).toBe(200);
  return ((await res.json()) as { queues: BoardQueue[] }).queues;
}

const countsOf = async (queue: string) => (await boardQueues()).find((q) => q.name === queue)!.counts;

describe("Bull Board at /admin/queues", () => {
  it("serves its page and every asset it references from the api itself", async () => {
    const res = await fetch(`${board}`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^text\/html/);
    expect(res.headers.get("content-security-policy")).toContain("default-src 'self'");
    expect(res.headers.get("x-powered-by")).toBeNull();
    const html = await res.text();
    expect(html).toContain('<base href="/admin/queues/" />');
    expect(html).toContain("<title>tracelane queues</title>");
    // Nothing from a CDN: every stylesheet, script and icon is a path under the board.
    expect(html).not.toMatch(/(src|href)="https?:\/\//);
    const assets = [...html.matchAll(/(?:src|href)="(static\/[^"]+)"/g)].map((m) => m[1]!);
    expect(assets.some((a) => a.endsWith(".js"))).toBe(true);
    expect(assets.some((a) => a.endsWith(".css"))).toBe(true);
    for (const asset of assets) {
      const r = await fetch(`${board}/${asset}`);
      expect(r.status, asset).toBe(200);
      await r.arrayBuffer();
    }
  });

  it("lists one read-write queue per stage of the pipeline, under the api's prefix, with counts after a research", async () => {
    const submitted = await api.submit({ query: "How do heat pumps work in cold climates?" });
    const view = await api.waitForFinal(submitted.body.id);
    expect(view.status).toBe("completed");

    // The last job marks the research completed just before BullMQ moves the job itself to completed.
    const queues = await waitFor(
      async () => {
        const all = await boardQueues();
        return all.every((q) => q.counts.active === 0) ? all : undefined;
      },
      { timeoutMs: 10_000, intervalMs: 50, what: "the last stage's job to leave active" },
    );
    expect(queues.map((q) => q.name)).toEqual(RESEARCH_PIPELINE.stages.map((s) => s.queue));
    // The fan-out stage's queue keeps its own job; its claims' child jobs leave as they complete (each claim's check
    // is on the research record), so the board shows the research's three stage jobs and no claim left behind.
    const fanOut = RESEARCH_PIPELINE.fanOutStage!;
    const claims = view.stages[fanOut].claims ?? [];
    expect(claims.length).toBeGreaterThan(0);
    for (const [i, q] of queues.entries()) {
      const stage = RESEARCH_PIPELINE.stages[i]!;
      expect(q.description).toContain(stage.service);
      expect(q.readOnlyMode).toBe(false);
      expect(q.allowRetries).toBe(true);
      // This test's queue prefix is unique: a board on another prefix would count nothing.
      expect(q.counts, stage.queue).toMatchObject({ completed: 1, failed: 0, waiting: 0, active: 0, delayed: 0 });
    }
    const fanOutQueue = RESEARCH_PIPELINE.stage(fanOut).queue;
    const done = (await boardQueues({ activeQueue: fanOutQueue, status: "completed" })).find((q) => q.name === fanOutQueue)!;
    expect(done.jobs.map((j) => j.id)).toEqual([stageJobId(view.id, fanOut)]);
  });

  it("retries a failed job back to waiting and removes it", async () => {
    // A 401 is not retried: the analysis job fails on its first attempt.
    const submitted = await api.submit({ query: "Why do batteries age? [[sim:fault=401;model=gpt-4.1;times=1]]" });
    const view = await api.waitForFinal(submitted.body.id);
    expect(view.status).toBe("failed");
    expect(view.error?.type).toBe("provider_auth");
    const jobId = `${view.id}-analysis`;
    const failed = await waitFor(
      async () => {
        const q = (await boardQueues({ activeQueue: analysisQueue, status: "failed" })).find((x) => x.name === analysisQueue)!;
        return q.jobs.find((j) => j.id === jobId);
      },
      { timeoutMs: 10_000, what: "the failed analysis job on the board" },
    );
    expect(failed.failedReason).toContain("HTTP 401");

    // With the stage's worker stopped, the retried job stays where the retry put it.
    await Promise.all(stack.byService("analysis-worker").map((p) => p.stop()));
    const retried = await fetch(`${board}/api/queues/${analysisQueue}/${jobId}/retry`, { method: "PUT" });
    expect(retried.status).toBe(204);
    expect(await countsOf(analysisQueue)).toMatchObject({ failed: 0, waiting: 1 });
    const job = (await (await fetch(`${board}/api/queues/${analysisQueue}/${jobId}`)).json()) as { status: string; job: { id: string } };
    expect(job).toMatchObject({ status: "waiting", job: { id: jobId } });

    const removed = await fetch(`${board}/api/queues/${analysisQueue}/${jobId}/clean`, { method: "PUT" });
    expect(removed.status).toBe(204);
    expect(await countsOf(analysisQueue)).toMatchObject({ failed: 0, waiting: 0 });
    expect((await fetch(`${board}/api/queues/${analysisQueue}/${jobId}`)).status).toBe(404);
  });

  it("renders every stage queue in Chromium with no request leaving the api", async () => {
    const browser = await launchChromium();
    try {
      const page = await browser.newPage({ viewport: { width: 1280, height: 720 } });
      const outside: string[] = [];
      const problems: string[] = [];
      await page.route("**/*", (route) => {
        if (route.request().url().startsWith(`${stack.apiUrl}/`)) return route.continue();
        outside.push(route.request().url());
        return route.abort();
      });
      page.on("requestfailed", (r) => problems.push(`request failed: ${r.url()} ${r.failure()?.errorText}`));
      page.on("response", (r) => {
        if (r.status() >= 400) problems.push(`HTTP ${r.status()}: ${r.url()}`);
      });
      page.on("console", (m) => {
        if (m.type() === "error") problems.push(`console: ${m.text()}`);
      });
      page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));

      await page.goto(board);
      for (const s of RESEARCH_PIPELINE.stages) {
        await page.getByRole("link", { name: s.queue }).first().waitFor({ timeout: 15_000 });
      }
      await page.getByText("tracelane queues").first().waitFor();
      mkdirSync(ARTIFACTS, { recursive: true });
      await page.screenshot({ path: path.join(ARTIFACTS, "queue-board.png"), fullPage: true });
      expect(outside).toEqual([]);
      expect(problems).toEqual([]);
    } finally {
      await browser.close();
    }
  });
});
