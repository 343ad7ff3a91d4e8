import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { randomUUID } from "node:crypto";
import { Redis } from "ioredis";
import { ResearchStore } from "@tracelane/research-store";
import { startRedisServer, waitFor, type EphemeralRedis } from "@tracelane/testkit";
import { apiClient, type ApiClient } from "../support/api-client.js";
import { startPipeline } from "../support/pipeline-stack.js";
import { simulatorStats } from "../support/simulator.js";
import { modelCallsOfResearch } from "../support/spans.js";

// Short locks so a killed worker's job is taken over in seconds, not the default 30 s.
const FAST_RECOVERY = { WORKER_LOCK_DURATION_MS: "1500", WORKER_STALLED_INTERVAL_MS: "1000" };
const SLOW_ANALYSIS = JSON.stringify({ "gpt-4.1": { baseMs: 1200, jitterMs: 0 } });

/** Each stage completed exactly once, read from the research's own event log. */
async function completionsPerStage(api: ApiClient, id: string): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (const e of await api.events(id)) {
    if (e.event === "stage.completed") counts[String(e.data.stage)] = (counts[String(e.data.stage)] ?? 0) + 1;
  }
  return counts;
}

describe("crash and restart safety", () => {
  let stack: Awaited<ReturnType<typeof startPipeline>>;
  let api: ApiClient;

  /** Leave exactly one live analysis worker (started with `env`) so the test knows who takes the job. */
  const onlyAnalysisWorker = async (env: Record<string, string> = {}) => {
    for (const w of stack.byService("analysis-worker")) await w.stop("SIGTERM");
    return stack.addReplica("analysis-worker", env);
  };

  beforeAll(async () => {
    stack = await startPipeline(inject("redisUrl"), {
      env: { ...FAST_RECOVERY, LLM_SIM_MODEL_LATENCY: SLOW_ANALYSIS, LOST_ENQUEUE_CHECK_MS: "250", LOST_ENQUEUE_MIN_AGE_MS: "1000" },
    });
    api = apiClient(stack.apiUrl!);
  });
  afterAll(async () => {
    await stack?.stop("SIGKILL");
  });

  it("recovers a job whose worker was SIGKILLed mid-call and completes it exactly once", async () => {
    const before = await simulatorStats(stack.simulatorUrl!);
    const victim = await onlyAnalysisWorker();
    const { body } = await api.submit({ query: "Killed mid-call" });
    await waitFor(async () => (await api.get(body.id)).stages.analysis.status === "running", { what: "analysis running" });
    await new Promise((r) => setTimeout(r, 200)); // the model call is under way
    await victim.stop("SIGKILL");
    await stack.addReplica("analysis-worker");

    const view = await api.waitForFinal(body.id, 45_000);
    const after = await simulatorStats(stack.simulatorUrl!);
    expect(view.status).toBe("completed");
    expect(await completionsPerStage(api, body.id)).toEqual({ analysis: 1, factcheck: 1, synthesis: 1 });
    // The killed attempt's call was never checkpointed, so it may be paid once more; later stages run once.
    expect((after.byModel["gpt-4.1"] ?? 0) - (before.byModel["gpt-4.1"] ?? 0)).toBeLessThanOrEqual(2);
    // The fact-check's calls are its claims' turns, each made once.
    expect((after.byModel["gemini-2.5-flash"] ?? 0) - (before.byModel["gemini-2.5-flash"] ?? 0)).toBe(modelCallsOfResearch(view) - 2);
  });

  it("does not pay for a checkpointed model call again after a crash before the next enqueue", async () => {
    const crasher = await onlyAnalysisWorker({ TRACELANE_TEST_CRASH_AFTER_CHECKPOINT: "true" });

    const before = await simulatorStats(stack.simulatorUrl!);
    const { body } = await api.submit({ query: "Crash after checkpoint" });
    await crasher.exited;
    await stack.addReplica("analysis-worker");

    const view = await api.waitForFinal(body.id, 45_000);
    const after = await simulatorStats(stack.simulatorUrl!);
    expect(view.status).toBe("completed");
    expect((after.byModel["gpt-4.1"] ?? 0) - (before.byModel["gpt-4.1"] ?? 0)).toBe(1);
    expect((after.byModel["gemini-2.5-flash"] ?? 0) - (before.byModel["gemini-2.5-flash"] ?? 0)).toBe(modelCallsOfResearch(view) - 2);
    expect(await completionsPerStage(api, body.id)).toEqual({ analysis: 1, factcheck: 1, synthesis: 1 });
  });

  it("enqueues a research whose first job was lost when the api crashed between create and enqueue", async () => {
    // What the api had done before crashing: the record exists, the job does not.
    const redis = new Redis(inject("redisUrl"));
    try {
      const store = new ResearchStore(redis, { prefix: stack.prefixes.research });
      const id = randomUUID().replaceAll("-", "");
      await store.create({ id, query: "Orphaned by a crash", options: {}, traceId: null });
      const view = await api.waitForFinal(id, 30_000);
      expect(view.status).toBe("completed");
      expect(await completionsPerStage(api, id)).toEqual({ analysis: 1, factcheck: 1, synthesis: 1 });
    } finally {
      redis.disconnect();
    }
  });

  it("finishes the in-flight job on SIGTERM, then exits 0", async () => {
    const worker = await onlyAnalysisWorker();
    const { body } = await api.submit({ query: "Graceful stop" });
    await waitFor(async () => (await api.get(body.id)).stages.analysis.status === "running", { what: "analysis running" });
    const code = await worker.stop("SIGTERM");
    expect(code).toBe(0);
    const afterStop = await api.get(body.id);
    expect(afterStop.stages.analysis.status).toBe("completed");

    await stack.addReplica("analysis-worker");
    expect((await api.waitForFinal(body.id)).status).toBe("completed");
  });
});

describe("Redis restart", () => {
  let redis: EphemeralRedis;
  let stack: Awaited<ReturnType<typeof startPipeline>>;

  beforeAll(async () => {
    redis = await startRedisServer({ appendonly: true });
    stack = await startPipeline(redis.url, {
      env: { ...FAST_RECOVERY, LLM_SIM_MODEL_LATENCY: JSON.stringify({ "gpt-4.1": { baseMs: 300, jitterMs: 200 } }) },
    });
  });
  afterAll(async () => {
    await stack?.stop("SIGKILL");
    await redis?.destroy();
  });

  it("reconnects every service and completes every job in flight exactly once", async () => {
    const api = apiClient(stack.apiUrl!);
    const ids = await Promise.all(
      Array.from({ length: 10 }, async (_, i) => (await api.submit({ query: `Across a restart ${i}` })).body.id),
    );
    await new Promise((r) => setTimeout(r, 400));
    await redis.stop();
    await new Promise((r) => setTimeout(r, 1_500));
    await redis.start();

    const views = await Promise.all(ids.map((id) => api.waitForFinal(id, 60_000)));
    expect(views.map((v) => v.status)).toEqual(ids.map(() => "completed"));
    for (const id of ids) {
      expect(await completionsPerStage(api, id)).toEqual({ analysis: 1, factcheck: 1, synthesis: 1 });
    }
  });
});
