import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { waitFor, type ServiceProcess } from "@tracelane/testkit";
import { apiClient, type ApiClient } from "../support/api-client.js";
import { startPipeline } from "../support/pipeline-stack.js";
import { simulatorStats } from "../support/simulator.js";

const RESEARCHES = 36;
const FACTCHECK_CONCURRENCY = 3;
// Two claims per research: 72 claim jobs (and 36 fact-check jobs) to share out.
const MAX_CLAIMS = 2;
const MAX_TOOL_TURNS = 3;

interface WorkerHealth {
  completed: number;
  active: number;
  stalled: number;
}

async function health(p: ServiceProcess): Promise<WorkerHealth> {
  const res = await fetch(`http://127.0.0.1:${p.port}/healthz`, { signal: AbortSignal.timeout(2_000) });
  return ((await res.json()) as { worker: WorkerHealth }).worker;
}

let stack: Awaited<ReturnType<typeof startPipeline>>;
let api: ApiClient;

beforeAll(async () => {
  stack = await startPipeline(inject("redisUrl"), {
    replicas: { "llm-simulator": 1, api: 1, "analysis-worker": 1, "factcheck-worker": 3, "synthesis-worker": 1 },
    env: {
      // Factcheck calls take a while, so the kill lands while jobs are in flight.
      LLM_SIM_MODEL_LATENCY: JSON.stringify({ "gemini-2.5-flash": { baseMs: 200, jitterMs: 50 } }),
      // A dead worker's jobs are taken over after its lock expires; keep that short for the test
      // (generous enough that a live worker under CI load never loses its lock).
      WORKER_LOCK_DURATION_MS: "5000",
      WORKER_STALLED_INTERVAL_MS: "1000",
      MAX_CLAIMS: String(MAX_CLAIMS),
      MAX_TOOL_TURNS: String(MAX_TOOL_TURNS),
    },
    serviceEnv: { "factcheck-worker": { WORKER_CONCURRENCY: String(FACTCHECK_CONCURRENCY) } },
  });
  api = apiClient(stack.apiUrl!);
}, 90_000);

afterAll(async () => {
  await stack?.stop();
});

describe("factcheck worker scaled to three processes", () => {
  it("shares a batch between the replicas and loses nothing, processing no stage twice, when one is SIGKILLed mid-batch", async () => {
    const replicas = stack.byService("factcheck-worker");
    expect(replicas).toHaveLength(3);
    const [victim, ...survivors] = replicas as [ServiceProcess, ...ServiceProcess[]];
    const before = await simulatorStats(stack.simulatorUrl!);
    const survivorsBefore = await Promise.all(survivors.map(health));

    const ids = await Promise.all(
      Array.from({ length: RESEARCHES }, async (_, i) => (await api.submit({ query: `Scaled factcheck question number ${i}` })).body.id),
    );

    // Kill the victim while it holds jobs: it has finished some and is working on more.
    const atKill = await waitFor(
      async () => {
        const h = await health(victim);
        return h.completed >= 1 && h.active >= 2 ? h : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 10, what: "the victim replica to be mid-batch" },
    );
    await victim.stop("SIGKILL");

    // Stalled jobs come back once the dead worker's lock expires (WORKER_LOCK_DURATION_MS).
    const views = await Promise.all(ids.map((id) => api.waitForFinal(id, 90_000)));
    const after = await simulatorStats(stack.simulatorUrl!);
    const survivorsAfter = await Promise.all(survivors.map(health));
    const delta = (model: string) => (after.byModel[model] ?? 0) - (before.byModel[model] ?? 0);

    // Every research completed.
    expect(views.map((v) => v.status)).toEqual(ids.map(() => "completed"));
    expect(views.every((v) => v.stages.factcheck.status === "completed")).toBe(true);

    // Every replica took part: the victim before it died, the survivors throughout.
    expect(atKill.completed).toBeGreaterThan(0);
    const survivorCompleted = survivorsAfter.map((h, i) => h.completed - survivorsBefore[i]!.completed);
    expect(survivorCompleted.every((n) => n > 0)).toBe(true);
    // The killed worker's in-flight jobs were taken over by a survivor, not lost.
    expect(survivorsAfter.reduce((n, h) => n + h.stalled, 0)).toBeGreaterThan(0);

    // Nothing ran twice: one analysis and one synthesis call per research (the factcheck
    // stage enqueued each successor once), every claim checked once, and factcheck calls beyond
    // the checked claims' own are only those the killed worker had in flight (each of its slots
    // at most one claim's turns), paid again by the retry.
    expect(delta("gpt-4.1")).toBe(RESEARCHES);
    expect(delta("deepseek-v3.2")).toBe(RESEARCHES);
    const claims = views.flatMap((v) => v.stages.factcheck.claims!);
    expect(claims).toHaveLength(RESEARCHES * MAX_CLAIMS);
    expect(claims.every((c) => c.status === "checked" && c.attempts <= 2)).toBe(true);
    expect(claims.filter((c) => c.attempts > 1).length).toBeLessThanOrEqual(FACTCHECK_CONCURRENCY);
    const checkedCalls = claims.reduce((n, c) => n + c.modelCalls!, 0);
    expect(delta("gemini-2.5-flash")).toBeGreaterThanOrEqual(checkedCalls);
    expect(delta("gemini-2.5-flash")).toBeLessThanOrEqual(checkedCalls + FACTCHECK_CONCURRENCY * (MAX_TOOL_TURNS + 1));
    expect(views.every((v) => v.stages.factcheck.attempts <= 2)).toBe(true);
    expect(views.every((v) => v.stages.analysis.attempts === 1 && v.stages.synthesis.attempts === 1)).toBe(true);
  }, 150_000);
});
