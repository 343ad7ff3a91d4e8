import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { ONE_OF_EACH } from "@tracelane/launcher";
import type { ResearchView } from "@tracelane/research-store";
import { waitFor, type ServiceProcess } from "@tracelane/testkit";
import { apiClient, type ApiClient } from "../support/api-client.js";
import { waitForCollectedTrace } from "../support/collected-traces.js";
import { startPipeline } from "../support/pipeline-stack.js";
import { simulatorStats } from "../support/simulator.js";
import { modelCallsOfResearch, spansOfResearch } from "../support/spans.js";

/**
 * The fact-check fans out per claim across real worker processes: one BullMQ child job per claim, checked by
 * a tool-using loop, fanned back in before synthesis, all in one trace. Each test starts the factcheck
 * replicas it needs (the others are stopped), so it knows who takes the claims.
 */

// Claim calls take a moment, so claims checked in parallel overlap visibly and a kill lands mid-fan-out.
const LATENCY = JSON.stringify({ "gemini-2.5-flash": { baseMs: 250, jitterMs: 50 } });

let stack: Awaited<ReturnType<typeof startPipeline>>;
let api: ApiClient;
let factcheckers: ServiceProcess[] = [];

/** Stop the running factcheck replicas and start `n` with `env`. */
async function useFactcheckers(n: number, env: Record<string, string> = {}): Promise<ServiceProcess[]> {
  await Promise.all(factcheckers.map((p) => p.stop("SIGTERM")));
  factcheckers = await Promise.all(Array.from({ length: n }, () => stack.addReplica("factcheck-worker", env)));
  return factcheckers;
}

async function completedJobs(p: ServiceProcess): Promise<number> {
  const res = await fetch(`http://127.0.0.1:${p.port}/healthz`, { signal: AbortSignal.timeout(2_000) });
  return ((await res.json()) as { worker: { completed: number } }).worker.completed;
}

/**
 * Short locks, so a killed replica's claims are taken over within seconds: only on the replicas a test kills
 * or crashes (on a loaded machine a short lock can expire under a live worker, which would run a job twice).
 */
const FAST_RECOVERY = { WORKER_LOCK_DURATION_MS: "3000", WORKER_STALLED_INTERVAL_MS: "1000" };

const geminiCalls = async () => (await simulatorStats(stack.simulatorUrl!)).byModel["gemini-2.5-flash"] ?? 0;

/** How many times each claim's check was recorded as final (claim.completed), by claim index. */
async function claimCompletions(id: string): Promise<Record<number, number>> {
  const counts: Record<number, number> = {};
  for (const e of await api.events(id)) {
    if (e.event !== "claim.completed") continue;
    const index = (e.data.data as { claim: number }).claim;
    counts[index] = (counts[index] ?? 0) + 1;
  }
  return counts;
}
const onceEach = (view: ResearchView) => Object.fromEntries(view.stages.factcheck.claims!.map((c) => [c.index, 1]));

beforeAll(async () => {
  stack = await startPipeline(inject("redisUrl"), {
    replicas: { ...ONE_OF_EACH, "factcheck-worker": 0 },
    env: {
      LLM_SIM_MODEL_LATENCY: LATENCY,
      COLLECTOR_BLOCK_MS: "100",
    },
  });
  api = apiClient(stack.apiUrl!);
}, 90_000);

afterAll(async () => {
  await stack?.stop("SIGKILL");
});

describe("fact-checking fans out per claim", () => {
  it("checks >= 4 claims in parallel over 3 replicas, in one trace with one root, tools under their agent and links at the fan-in", async () => {
    // Two slots each: 8 claims cannot all land on one replica at once.
    const replicas = await useFactcheckers(3, { WORKER_CONCURRENCY: "2" });
    const callsBefore = await geminiCalls();
    const { body } = await api.submit({ query: "Do heat pumps work in cold climates like Norway?" });
    const view = await api.waitForFinal(body.id, 60_000);
    expect(view.status, JSON.stringify(view.error)).toBe("completed");

    const claims = view.stages.factcheck.claims!;
    expect(claims.length).toBeGreaterThanOrEqual(4);
    for (const c of claims) {
      expect(c.status).toBe("checked");
      expect(["supported", "refuted", "unverifiable"]).toContain(c.verdict);
      expect(c.evidence).toBeInstanceOf(Array);
      expect(c.rationale!.length).toBeGreaterThan(0);
      expect(c.model).toBe("gemini-2.5-flash");
      expect(c.attempts).toBe(1);
      expect(c.usage!.inputTokens).toBeGreaterThan(0);
      expect(c.costUsd).toBeGreaterThan(0);
      expect(c.latencyMs).toBeGreaterThan(0);
    }
    // Every replica checked some: the jobs were shared, not run by one process.
    const perReplica = await Promise.all(replicas.map(completedJobs));
    expect(perReplica.filter((n) => n > 0).length, JSON.stringify(perReplica)).toBeGreaterThanOrEqual(2);
    expect(perReplica.reduce((a, b) => a + b, 0)).toBe(claims.length + 1); // + the fact-check's own job
    // Each claim checked exactly once, each model call made once.
    expect(await claimCompletions(body.id)).toEqual(onceEach(view));
    expect((await geminiCalls()) - callsBefore).toBe(modelCallsOfResearch(view) - 2);
    // The status page's totals are the stages', the fact-check's its claims'.
    expect(view.stages.factcheck.costUsd).toBeCloseTo(
      claims.reduce((n, c) => n + c.costUsd!, 0),
      9,
    );

    // One trace, assembled from every process: exactly one root, every parent present.
    const { body: trace, spans } = await waitForCollectedTrace(stack.apiUrl!, body.traceId, spansOfResearch(view), 30_000);
    expect(trace.summary.spanCount).toBe(spansOfResearch(view));
    expect(trace.tree).toHaveLength(1);
    const ids = new Set(spans.map((s) => s.spanId));
    expect(spans.filter((s) => !s.parentSpanId || !ids.has(s.parentSpanId)).map((s) => s.name)).toEqual(["POST /v1/research"]);
    // The collector counts every call, the claims' too, and prices them as the research record does.
    expect(trace.summary.callCount).toBe(modelCallsOfResearch(view));
    expect(trace.summary.byStage.factcheck!.calls).toBe(modelCallsOfResearch(view) - 2);
    expect(trace.summary.costUsd).toBeCloseTo(view.totals.costUsd, 9);

    // Claims ran in parallel: some two claims' chat spans overlap in time.
    const byId = new Map(spans.map((s) => [s.spanId, s]));
    const claimOf = (spanId: string): string | undefined => {
      for (let s = byId.get(spanId); s; s = s.parentSpanId ? byId.get(s.parentSpanId) : undefined) {
        const jobId = s.attributes["messaging.message.id"];
        if (s.kind === "consumer" && typeof jobId === "string" && jobId.includes("-claim")) return jobId;
      }
      return undefined;
    };
    const chats = spans.filter((s) => s.name === "chat gemini-2.5-flash").map((s) => ({ ...s, claim: claimOf(s.spanId) }));
    expect(chats.every((c) => c.claim !== undefined)).toBe(true);
    const overlapping = chats.some((a) => chats.some((b) => a.claim !== b.claim && a.startMs < b.endMs && b.startMs < a.endMs));
    expect(overlapping).toBe(true);

    // Tool runs sit under their claim's agent span, beside the chat that asked for them.
    const tools = spans.filter((s) => s.name === "execute_tool search_evidence");
    expect(tools).toHaveLength(claims.reduce((n, c) => n + c.toolCalls!, 0));
    for (const tool of tools) {
      const agent = byId.get(tool.parentSpanId!)!;
      expect(agent.name).toBe("invoke_agent factcheck");
      expect(spans.some((s) => s.parentSpanId === agent.spanId && s.name === "chat gemini-2.5-flash")).toBe(true);
      expect(tool.attributes["gen_ai.tool.name"]).toBe("search_evidence");
      expect(tool.status).toBe("ok");
    }

    // The fan-in continues from every claim: its agent span links to each claim job's CONSUMER span.
    const claimConsumers = spans.filter((s) => s.kind === "consumer" && String(s.attributes["messaging.message.id"]).includes("-claim"));
    expect(claimConsumers).toHaveLength(claims.length);
    const fanIn = spans.find((s) => s.name === "invoke_agent factcheck" && (s.links?.length ?? 0) > 0)!;
    expect(fanIn.links!.map((l) => l.spanId).sort()).toEqual(claimConsumers.map((s) => s.spanId).sort());
    // Every claim job's CONSUMER is a child of the PRODUCER span the fan-out made for it, under the fact-check's agent.
    for (const consumer of claimConsumers) {
      const publish = byId.get(consumer.parentSpanId!)!;
      expect(publish.kind).toBe("producer");
      expect(byId.get(publish.parentSpanId!)!.name).toBe("invoke_agent factcheck");
    }
  }, 90_000);

  it("marks a claim whose checks keep failing unverifiable with its error, and the research still completes", async () => {
    // One slot, one attempt per claim job: the first claim's call takes both faults (the call and its one retry).
    await useFactcheckers(1, { WORKER_CONCURRENCY: "1", JOB_ATTEMPTS: "1" });
    const { body } = await api.submit({
      query: "Is nuclear power the safest energy source? [[sim:fault=500;model=gemini-2.5-flash;times=2]]",
    });
    const view = await api.waitForFinal(body.id, 60_000);
    expect(view.status, JSON.stringify(view.error)).toBe("completed");
    const claims = view.stages.factcheck.claims!;
    const failed = claims.filter((c) => c.status === "failed");
    expect(failed).toHaveLength(1);
    expect(failed[0]).toMatchObject({ verdict: "unverifiable", error: { type: "http_500" }, attempts: 1 });
    expect(failed[0]!.error!.message).toMatch(/gemini-2\.5-flash/);
    expect(claims.filter((c) => c.status === "checked")).toHaveLength(claims.length - 1);
    // The report was still written, from the claims that were checked and the one that could not be.
    expect(view.result!.factCheck).toMatch(/\[unverifiable\]/);
    expect(view.result!.finalReport.length).toBeGreaterThan(50);
  }, 60_000);

  it("fails the research instead with FACTCHECK_FAIL_ON_CLAIM_ERROR=true, naming the claim", async () => {
    await useFactcheckers(1, { WORKER_CONCURRENCY: "1", JOB_ATTEMPTS: "1", FACTCHECK_FAIL_ON_CLAIM_ERROR: "true" });
    const { body } = await api.submit({
      query: "Is nuclear power the safest energy source? [[sim:fault=500; model=gemini-2.5-flash;times=2]]",
    });
    const view = await api.waitForFinal(body.id, 60_000);
    expect(view.status).toBe("failed");
    expect(view.error).toMatchObject({ stage: "factcheck", type: "http_500" });
    expect(view.error!.message).toMatch(/^claim \d+ could not be checked: .*gemini-2\.5-flash/);
    expect(view.stages.synthesis.status).not.toBe("completed");
  }, 60_000);

  it("never pays twice for a claim checkpointed before its replica crashed", async () => {
    // The crasher takes one claim at a time and exits right after checkpointing the first it checks.
    const [crasher] = await useFactcheckers(1, {
      ...FAST_RECOVERY,
      WORKER_CONCURRENCY: "1",
      TRACELANE_TEST_CRASH_AFTER_CHECKPOINT: "true",
    });
    const callsBefore = await geminiCalls();
    const { body } = await api.submit({ query: "How much CO2 does concrete production emit?" });
    // Killed by its own SIGKILL right after its first claim's checkpoint (no exit code: a signal).
    expect(await crasher!.exited).toBeNull();
    factcheckers = [await stack.addReplica("factcheck-worker", FAST_RECOVERY)];

    const view = await api.waitForFinal(body.id, 60_000);
    expect(view.status, JSON.stringify(view.error)).toBe("completed");
    // Every claim checked once: the crashed claim's job was retried and found its checkpoint.
    expect(await claimCompletions(body.id)).toEqual(onceEach(view));
    expect(view.stages.factcheck.claims!.every((c) => c.status === "checked")).toBe(true);
    expect((await geminiCalls()) - callsBefore).toBe(modelCallsOfResearch(view) - 2);
  }, 60_000);

  it("takes over the claims of a replica SIGKILLed mid-fan-out: every claim checked exactly once, only the killed calls paid again", async () => {
    const [victim, ...survivors] = await useFactcheckers(3, { ...FAST_RECOVERY, WORKER_CONCURRENCY: "2" });
    const callsBefore = await geminiCalls();
    const ids = await Promise.all(
      Array.from(
        { length: 4 },
        async (_, i) => (await api.submit({ query: `Scaled fan-out question ${i}: are tides predictable?` })).body.id,
      ),
    );
    // Kill the victim while it holds claims: it has checked some and is checking more.
    await waitFor(
      async () => {
        const res = await fetch(`http://127.0.0.1:${victim!.port}/healthz`);
        const w = ((await res.json()) as { worker: { completed: number; active: number } }).worker;
        return w.completed >= 1 && w.active >= 1;
      },
      { timeoutMs: 30_000, intervalMs: 10, what: "the victim to be mid-fan-out" },
    );
    await victim!.stop("SIGKILL");
    factcheckers = survivors;

    const views = await Promise.all(ids.map((id) => api.waitForFinal(id, 60_000)));
    for (const view of views) {
      expect(view.status, JSON.stringify(view.error)).toBe("completed");
      expect(await claimCompletions(view.id)).toEqual(onceEach(view));
      expect(view.stages.factcheck.claims!.every((c) => c.status === "checked")).toBe(true);
    }
    // Calls beyond the checked claims' own are only those the victim had in flight (at most its two slots,
    // each up to MAX_TOOL_TURNS + 1 turns), never a second check of a claim already checked.
    const extra = (await geminiCalls()) - callsBefore - views.reduce((n, v) => n + modelCallsOfResearch(v) - 2, 0);
    expect(extra).toBeGreaterThanOrEqual(0);
    expect(extra).toBeLessThanOrEqual(2 * 4);
    const retried = views.flatMap((v) => v.stages.factcheck.claims!).filter((c) => c.attempts > 1);
    expect(retried.length).toBeLessThanOrEqual(2);
  }, 90_000);

  it("asks once more for an analysis that does not match its schema, then fails with a clear reason", async () => {
    await useFactcheckers(1);
    const recovered = await api.submit({ query: "Why is the sky blue? [[sim:fault=invalid_output;model=gpt-4.1;times=1]]" });
    const once = await api.waitForFinal(recovered.body.id, 60_000);
    expect(once.status, JSON.stringify(once.error)).toBe("completed");
    // The thrown-away answer is paid for: in the stage's cost, and apart as retry spend.
    expect(once.stages.analysis.retryCostUsd).toBeGreaterThan(0);
    expect(once.totals.retryCostUsd).toBeCloseTo(once.stages.analysis.retryCostUsd!, 9);
    expect(once.stages.analysis.costUsd).toBeGreaterThan(once.stages.analysis.retryCostUsd!);
    expect(once.stages.factcheck.claims!.length).toBeGreaterThanOrEqual(1);

    const gptBefore = (await simulatorStats(stack.simulatorUrl!)).byModel["gpt-4.1"] ?? 0;
    const failing = await api.submit({ query: "Why is the sky blue? [[sim:fault=invalid_output;model=gpt-4.1;times=2]]" });
    const twice = await api.waitForFinal(failing.body.id, 60_000);
    const gptAfter = (await simulatorStats(stack.simulatorUrl!)).byModel["gpt-4.1"] ?? 0;
    expect(twice.status).toBe("failed");
    expect(twice.error).toMatchObject({ stage: "analysis", type: "invalid_model_output" });
    expect(twice.error!.message).toMatch(/answered twice with output that does not match/);
    expect(twice.error!.message).toMatch(/ANALYSIS_MODEL/);
    // Exactly two calls: the answer, one retry, and no job retries of an unrecoverable failure.
    expect(gptAfter - gptBefore).toBe(2);
    expect(twice.stages.analysis.attempts).toBe(1);
    expect(twice.stages.factcheck.status).toBe("pending");
    // Both answers were paid for and thrown away: the failed research still counts them, all as retry spend.
    const { analysis } = twice.stages;
    expect(analysis.usage!.inputTokens).toBeGreaterThan(0);
    expect(analysis.costUsd).toBeGreaterThan(0);
    expect(analysis.retryCostUsd).toBe(analysis.costUsd);
    expect(twice.totals.costUsd).toBe(analysis.costUsd);
    expect(twice.totals.retryCostUsd).toBe(analysis.costUsd);
    // gpt-4.1 list price: $2 in, $0.50 cached in, $8 out per 1M tokens.
    const u = analysis.usage!;
    const cached = u.cachedInputTokens ?? 0;
    expect(Math.round(analysis.costUsd! * 1e9)).toBe(Math.round((u.inputTokens - cached) * 2_000 + cached * 500 + u.outputTokens * 8_000));
  }, 60_000);
});
