import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { toNanoUsd } from "@tracelane/pricing";
import { waitFor } from "@tracelane/testkit";
import { dailySpendKey, RESEARCH_PARTITIONS, researchKeys, researchPartition } from "@tracelane/research-store";
import { apiClient } from "../support/api-client.js";
import { simulatorStats } from "../support/simulator.js";
import { startInProcessPipeline, type InProcessPipeline } from "../support/in-process-pipeline.js";

/**
 * DAILY_SPEND_CAP_USD through the whole pipeline (api, workers, simulator, Redis): every call's cost
 * goes on its spender's total for the UTC day, a call that would pass the cap is not made, and
 * POST /v1/research is refused once the cap is used up. Without API keys the spender is the client address.
 */
const CAP_USD = 0.05;
const today = () => new Date().toISOString().slice(0, 10);

/** A spender's key for today in research `id`'s partition (where that research's calls are charged). */
const spendKeyOf = (pipeline: InProcessPipeline, id: string, subject: string) =>
  dailySpendKey(pipeline.prefixes.research, subject, today(), researchPartition(id));

/** What a spender spent today: the sum of its keys over the partitions. */
async function spentToday(pipeline: InProcessPipeline, subject: string): Promise<number> {
  let nano = 0;
  for (let k = 0; k < RESEARCH_PARTITIONS; k++) {
    nano += Number((await pipeline.redis.get(dailySpendKey(pipeline.prefixes.research, subject, today(), k))) ?? 0);
  }
  return nano;
}

describe("daily spend cap per spender", () => {
  let pipeline: InProcessPipeline;
  beforeAll(async () => {
    pipeline = await startInProcessPipeline({ redisUrl: inject("redisUrl"), env: { DAILY_SPEND_CAP_USD: String(CAP_USD) } });
  });
  afterAll(async () => {
    await pipeline?.close();
  });

  /** The spender a research is charged to, as its record names it, and that spender's key for today. */
  const spendOf = async (id: string) => {
    const subject = await pipeline.redis.hget(researchKeys(pipeline.prefixes.research, id).record, "spendSubject");
    expect(subject).toMatch(/^ip:/);
    return { subject: subject!, key: spendKeyOf(pipeline, id, subject!) };
  };

  it("adds each call's cost to the spender's day and stops before a call that would pass the cap", async () => {
    const api = apiClient(pipeline.apiUrl);
    const simulatorUrl = pipeline.simulator.baseURL.replace(/\/v1$/, "");
    const before = (await simulatorStats(simulatorUrl)).byModel["claude-opus-4.1"] ?? 0;
    // gpt-4.1 and gemini-2.5-flash are estimated at under a cent each; claude-opus-4.1 ($75 per 1M
    // output tokens, up to 1,024 of them) at ~$0.077, more than the $0.05 a day allows. No maxCostUsd.
    const { status, body } = await api.submit({ query: "Capped question", options: { models: { synthesis: "claude-opus-4.1" } } });
    expect(status).toBe(202);
    const view = await pipeline.waitForFinal(body.id);
    expect(view.options.maxCostUsd).toBeUndefined();
    expect(view.status).toBe("failed");
    expect(view.error).toMatchObject({ stage: "synthesis", type: "daily_spend_cap_reached" });
    expect(view.error!.message).toMatch(
      /left today of the daily spend cap \$0\.05 \(DAILY_SPEND_CAP_USD, per API key, or client address without keys, per UTC day; it resets at 00:00 UTC\)/,
    );
    expect(view.partialResult?.analysis?.length).toBeGreaterThan(0);
    expect((await simulatorStats(simulatorUrl)).byModel["claude-opus-4.1"] ?? 0).toBe(before);

    // What the research spent is exactly what its spender's day holds (nano-dollars), for about two days.
    const { key } = await spendOf(body.id);
    expect(view.totals.costUsd).toBeGreaterThan(0);
    expect(Number(await pipeline.redis.get(key))).toBe(toNanoUsd(view.totals.costUsd));
    const ttl = await pipeline.redis.ttl(key);
    expect(ttl).toBeGreaterThan(2 * 24 * 3600 - 60);
    expect(ttl).toBeLessThanOrEqual(2 * 24 * 3600);
  });

  it("answers 429 daily_spend_cap_reached with Retry-After until 00:00 UTC once the cap is spent, creating nothing", async () => {
    const api = apiClient(pipeline.apiUrl);
    const first = await api.submit({ query: "Within the cap" }, { "idempotency-key": "within-the-cap" });
    expect(first.status).toBe(202);
    const done = await pipeline.waitForFinal(first.body.id);
    expect(done.status).toBe("completed");
    const { key, subject } = await spendOf(first.body.id);
    // The rest of the day's cap is spent (by other researches of the same spender).
    await pipeline.redis.incrby(key, toNanoUsd(CAP_USD) - (await spentToday(pipeline, subject)));

    const researchKeysBefore = (await pipeline.redis.keys(`${pipeline.prefixes.research}:*`)).sort();
    const refused = await api.submit({ query: "Over the cap" });
    expect(refused.status).toBe(429);
    const now = new Date();
    const untilMidnight = (Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate() + 1) - now.getTime()) / 1000;
    expect(Math.abs(Number(refused.headers.get("retry-after")) - untilMidnight)).toBeLessThanOrEqual(5);
    const error = (refused.body as unknown as { error: { code: string; message: string; details: Record<string, unknown> } }).error;
    expect(error.code).toBe("daily_spend_cap_reached");
    expect(error.message).toMatch(
      /^The daily spend cap of \$0\.05 for this client address is used up \(\$0\.05 spent today, UTC\)\. It resets at 00:00 UTC/,
    );
    expect(error.details).toMatchObject({ capUsd: CAP_USD, spentUsd: CAP_USD });
    expect((await pipeline.redis.keys(`${pipeline.prefixes.research}:*`)).sort()).toEqual(researchKeysBefore);
    expect(await pipeline.queues.queue(pipeline.pipeline.first).getJobCounts("waiting", "active", "delayed")).toEqual({
      waiting: 0,
      active: 0,
      delayed: 0,
    });
    // A replay of the research it already has (same Idempotency-Key and body) is still answered, a new key is not.
    const replay = await api.submit({ query: "Within the cap" }, { "idempotency-key": "within-the-cap" });
    expect(replay.status).toBe(200);
    expect(replay.body.id).toBe(first.body.id);
    expect((await api.submit({ query: "Within the cap" }, { "idempotency-key": "another-key" })).status).toBe(429);
  });
});

describe("daily spend cap: calls that finish after a cancel, and models without a price", () => {
  let pipeline: InProcessPipeline;
  beforeAll(async () => {
    pipeline = await startInProcessPipeline({
      redisUrl: inject("redisUrl"),
      // synthesis's model answers after 1 s, so the test can cancel while that call (the stage's one) is in flight.
      simulator: { latency: { baseMs: 0, jitterMs: 0, models: { "deepseek-v3.2": { baseMs: 1_000, jitterMs: 0 } } } },
      // o1-pro has no price: allowed here by the operator, so only the cap can stop it.
      env: { DAILY_SPEND_CAP_USD: "10", SYNTHESIS_ALLOWED_MODELS: "o1-pro" },
    });
  });
  afterAll(async () => {
    await pipeline?.close();
  });

  it("charges the spender for a call that finished after its research was cancelled", async () => {
    const api = apiClient(pipeline.apiUrl);
    const simulatorUrl = pipeline.simulator.baseURL.replace(/\/v1$/, "");
    const before = (await simulatorStats(simulatorUrl)).byModel["deepseek-v3.2"] ?? 0;
    const { body } = await api.submit({ query: "Cancelled while synthesis runs" });
    await waitFor(async () => (await pipeline.store.get(body.id))?.stages.synthesis.status === "running", {
      what: "synthesis to be running",
      intervalMs: 20,
    });
    const cancelled = await api.cancel(body.id);
    expect(cancelled.status).toBe(200);
    expect(cancelled.body).toMatchObject({ status: "cancelled", stages: { synthesis: { status: "cancelled" } } });
    expect(cancelled.body.stages.synthesis.usage).toBeUndefined(); // the call is still in flight
    const view = await waitFor(
      async () => {
        const v = await pipeline.store.get(body.id);
        return v?.stages.synthesis.usage ? v : undefined;
      },
      { what: "the synthesis call to be recorded on the cancelled stage" },
    );
    expect((await simulatorStats(simulatorUrl)).byModel["deepseek-v3.2"]).toBe(before + 1);
    expect(view.status).toBe("cancelled");
    expect(view.stages.synthesis.costUsd).toBeGreaterThan(0);
    const subject = await pipeline.redis.hget(researchKeys(pipeline.prefixes.research, body.id).record, "spendSubject");
    const spent = await spentToday(pipeline, subject!);
    expect(spent).toBe(toNanoUsd(view.totals.costUsd));
    expect(spent).toBe(
      toNanoUsd(view.stages.analysis.costUsd!) + toNanoUsd(view.stages.factcheck.costUsd!) + toNanoUsd(view.stages.synthesis.costUsd!),
    );
  });

  it("fails with budget_unverifiable before calling a model whose cost the cap cannot count", async () => {
    const { body } = await apiClient(pipeline.apiUrl).submit({
      query: "Unpriced under a cap",
      options: { models: { synthesis: "o1-pro" } },
    });
    const view = await pipeline.waitForFinal(body.id);
    expect(view.error).toMatchObject({ stage: "synthesis", type: "budget_unverifiable" });
    expect(view.error!.message).toMatch(
      /^Stopped before synthesis: o1-pro has no price in the price table, so the daily spend cap \(DAILY_SPEND_CAP_USD \$10\) cannot be enforced\./,
    );
  });
});

describe("daily spend cap with API keys", () => {
  const keyA = `spender-a-${randomUUID()}`;
  const keyB = `spender-b-${randomUUID()}`;
  let pipeline: InProcessPipeline;
  beforeAll(async () => {
    pipeline = await startInProcessPipeline({
      redisUrl: inject("redisUrl"),
      env: { DAILY_SPEND_CAP_USD: String(CAP_USD) },
      apiEnv: { API_KEYS: `${keyA} a member, ${keyB} b member` },
    });
  });
  afterAll(async () => {
    await pipeline?.close();
  });

  it("counts per key: one key's spent cap does not stop another", async () => {
    const api = apiClient(pipeline.apiUrl);
    const asA = { authorization: `Bearer ${keyA}` };
    const first = await api.submit({ query: "Key A's research" }, asA);
    expect(first.status).toBe(202);
    const subject = await pipeline.redis.hget(researchKeys(pipeline.prefixes.research, first.body.id).record, "spendSubject");
    expect(subject).toMatch(/^key_[0-9a-f]{16}$/);
    expect((await pipeline.waitForFinal(first.body.id)).status).toBe("completed");
    await pipeline.redis.set(spendKeyOf(pipeline, first.body.id, subject!), toNanoUsd(CAP_USD));

    const refused = await api.submit({ query: "Key A again" }, asA);
    expect(refused.status).toBe(429);
    expect((refused.body as unknown as { error: { message: string } }).error.message).toMatch(/for this API key is used up/);
    const other = await api.submit({ query: "Key B's research" }, { authorization: `Bearer ${keyB}` });
    expect(other.status).toBe(202);
    expect((await pipeline.waitForFinal(other.body.id)).status).toBe("completed");
  });
});

describe("DEFAULT_MAX_COST_USD", () => {
  let pipeline: InProcessPipeline;
  beforeAll(async () => {
    pipeline = await startInProcessPipeline({ redisUrl: inject("redisUrl"), env: { DEFAULT_MAX_COST_USD: "0.02" } });
  });
  afterAll(async () => {
    await pipeline?.close();
  });

  it("budgets a research that sets no maxCostUsd, and the budget gate enforces it", async () => {
    const { body } = await apiClient(pipeline.apiUrl).submit({
      query: "Default budget",
      options: { models: { synthesis: "claude-opus-4.1" } },
    });
    const view = await pipeline.waitForFinal(body.id);
    expect(view.options).toEqual({ models: { synthesis: "claude-opus-4.1" }, maxCostUsd: 0.02 });
    expect(view.status).toBe("failed");
    expect(view.error).toMatchObject({ stage: "synthesis", type: "budget_exceeded" });
    expect(view.error!.message).toMatch(/maxCostUsd \$0\.02/);
  });
});
