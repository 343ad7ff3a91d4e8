import { randomUUID } from "node:crypto";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { slotOf } from "@tracelane/runtime";
import { ResearchStore, researchIndexKeys, researchKeys, researchPartition } from "@tracelane/research-store";

let redis: Redis;
let store: ResearchStore;
const newId = () => randomUUID().replaceAll("-", "");

beforeAll(() => {
  redis = new Redis(inject("redisUrl"));
  store = new ResearchStore(redis, { prefix: `test-${newId()}` });
});
afterAll(async () => {
  const keys = await redis.keys(`${store.prefix}:*`);
  if (keys.length) await redis.del(...keys);
  redis.disconnect();
});

describe("ResearchStore", () => {
  it("returns the same research for a repeated idempotency key and flags a different body as a conflict", async () => {
    const key = `k-${newId()}`;
    const first = await store.create({ id: newId(), query: "q1", options: {}, traceId: null, idempotencyKey: key });
    const again = await store.create({ id: newId(), query: "q1", options: {}, traceId: null, idempotencyKey: key });
    const other = await store.create({ id: newId(), query: "q2", options: {}, traceId: null, idempotencyKey: key });
    expect(first.outcome).toBe("created");
    expect(again).toEqual({ outcome: "existing", id: first.id });
    expect(other).toEqual({ outcome: "conflict", id: first.id });
  });

  it("finishes a research whose Idempotency-Key was claimed by a try that died before writing its record", async () => {
    const key = `k-${newId()}`;
    const claimedId = newId();
    // What a create that crashed between its two steps leaves: the key bound to an id, no record. The binding's
    // fingerprint of this body is taken from a real create under another prefix.
    const fingerprint = await (async () => {
      const probe = new ResearchStore(redis, { prefix: `test-probe-${newId()}` });
      await probe.create({ id: claimedId, query: "q", options: {}, traceId: null, idempotencyKey: key });
      const [bound] = await redis.keys(`${probe.prefix}:idem:*`);
      const value = (await redis.get(bound!))!;
      await redis.del(...(await redis.keys(`${probe.prefix}:*`)));
      return value.split("|")[1]!;
    })();
    await redis.set(`${store.prefix}:idem:${key}`, `${claimedId}|${fingerprint}`, "EX", 60);

    const replay = await store.create({ id: newId(), query: "q", options: {}, traceId: null, idempotencyKey: key });
    expect(replay).toEqual({ outcome: "created", id: claimedId });
    expect((await store.get(claimedId))?.status).toBe("queued");
    expect(await store.create({ id: newId(), query: "q", options: {}, traceId: null, idempotencyKey: key })).toEqual({
      outcome: "existing",
      id: claimedId,
    });
  });

  it("keeps a research's record, events and its partition's indexes in one Redis Cluster slot", async () => {
    const id = newId();
    const keys = researchKeys(store.prefix, id);
    const indexes = researchIndexKeys(store.prefix, researchPartition(id));
    const slots = new Set([keys.record, keys.events, indexes.all, ...Object.values(indexes.byStatus)].map(slotOf));
    expect(slots.size).toBe(1);
    // ...while researches spread over the partitions (and so over a cluster's masters).
    const partitions = new Set(Array.from({ length: 400 }, () => researchPartition(newId())));
    expect(partitions.size).toBe(16);
  });

  it("never moves a research out of a final state", async () => {
    const id = newId();
    await store.create({ id, query: "q", options: {}, traceId: null });
    expect(await store.cancel(id)).toBe("applied");
    expect(await store.completed(id)).toBe("final");
    expect((await store.stageStarted(id, "analysis", { model: "m", attempt: 1, queueWaitMs: 0 })).result).toBe("final");
    const view = await store.get(id);
    expect(view?.status).toBe("cancelled");
    expect(view?.stages.analysis.status).toBe("skipped");
  });

  it("records each transition as an event, in order, readable from any point", async () => {
    const id = newId();
    await store.create({ id, query: "q", options: {}, traceId: "t" });
    await store.stageStarted(id, "analysis", { model: "gpt-4.1", attempt: 1, queueWaitMs: 3 });
    await store.stageCompleted(id, "analysis", {
      output: "A",
      model: "gpt-4.1",
      usage: { inputTokens: 10, outputTokens: 20 },
      costUsd: 0.001,
      latencyMs: 5,
      next: "factcheck",
    });
    const events = await store.events(id);
    expect(events.map((e) => e.type)).toEqual(["research.queued", "stage.started", "stage.completed"]);
    const after = await store.events(id, events[0]!.id);
    expect(after.map((e) => e.type)).toEqual(["stage.started", "stage.completed"]);
    const view = await store.get(id);
    expect(view?.stage).toBe("factcheck");
    expect(view?.stages.factcheck.status).toBe("queued");
    expect(view?.partialResult).toEqual({ analysis: "A" });
    expect(view?.totals).toMatchObject({ inputTokens: 10, outputTokens: 20, costUsd: 0.001 });
  });

  it("reports an unpriced stage by model name instead of adding $0", async () => {
    const id = newId();
    await store.create({ id, query: "q", options: {}, traceId: null });
    await store.stageCompleted(id, "analysis", {
      output: "A",
      model: "house-model",
      usage: { inputTokens: 1, outputTokens: 1 },
      costUsd: null,
      latencyMs: 1,
      next: "factcheck",
    });
    const view = await store.get(id);
    expect(view?.stages.analysis.costUsd).toBeNull();
    expect(view?.totals.unpricedModels).toEqual(["house-model"]);
  });
});

describe("ResearchStore concurrent attempts", () => {
  it("keeps the first checkpoint of a stage when two attempts complete it", async () => {
    const id = newId();
    await store.create({ id, query: "q", options: {}, traceId: null });
    const done = (output: string) =>
      store.stageCompleted(id, "analysis", {
        output,
        model: "m",
        usage: { inputTokens: 1, outputTokens: 1 },
        costUsd: 0,
        latencyMs: 1,
        next: "factcheck",
      });
    expect(await done("first")).toBe("applied");
    expect(await done("second")).toBe("duplicate");
    expect((await store.load(id))?.outputs.analysis).toBe("first");
    expect((await store.events(id)).filter((e) => e.type === "stage.completed")).toHaveLength(1);
  });

  it("starts a stage in one step: the research as it now is, on the research's own model, the first start kept across attempts", async () => {
    const id = newId();
    await store.create({ id, query: "q", options: { models: { factcheck: "claude-sonnet-4.5" } }, traceId: null });
    expect(await store.stageStarted(newId(), "analysis", { model: "m", attempt: 1, queueWaitMs: 0 })).toEqual({ result: "missing" });

    const first = await store.stageStarted(id, "analysis", { model: "gpt-4.1", attempt: 1, queueWaitMs: 7 });
    expect(first.result).toBe("applied");
    if (first.result !== "applied") return;
    expect(first.view).toMatchObject({ id, status: "running", stage: "analysis", query: "q" });
    expect(first.record).toMatchObject({ status: "running", model: "gpt-4.1", attempts: 1, queueWaitMs: 7 });
    expect(first.view.stages.analysis).toEqual(first.record);

    await store.stageRetrying(id, "analysis", { error: { type: "server_error", message: "503" }, attempt: 2 });
    const second = await store.stageStarted(id, "analysis", { model: "gpt-4.1", attempt: 2, queueWaitMs: 900 });
    if (second.result !== "applied") throw new Error(`expected applied, got ${second.result}`);
    // Start time and queue wait are the first attempt's; the retry's error is gone once it runs again.
    expect(second.record).toEqual({ status: "running", model: "gpt-4.1", attempts: 2, queueWaitMs: 7, startedAt: first.record.startedAt });

    const factcheck = await store.stageStarted(id, "factcheck", { model: "gemini-2.5-flash", attempt: 1, queueWaitMs: 1 });
    expect(factcheck.result === "applied" && factcheck.record.model).toBe("claude-sonnet-4.5");
    const started = (await store.events(id)).filter((e) => e.type === "stage.started");
    expect(started.map((e) => [e.stage, e.status, e.data?.attempt, e.data?.model])).toEqual([
      ["analysis", "running", 1, "gpt-4.1"],
      ["analysis", "running", 2, "gpt-4.1"],
      ["factcheck", "running", 1, "claude-sonnet-4.5"],
    ]);
  });

  it("hands back a checkpointed stage's output without starting it again", async () => {
    const id = newId();
    await store.create({ id, query: "q", options: {}, traceId: null });
    await store.stageStarted(id, "analysis", { model: "m", attempt: 1, queueWaitMs: 0 });
    await store.stageCompleted(id, "analysis", {
      output: "A",
      model: "m",
      usage: { inputTokens: 1, outputTokens: 1 },
      costUsd: 0,
      latencyMs: 1,
      next: "factcheck",
    });
    const eventsBefore = (await store.events(id)).length;

    const again = await store.stageStarted(id, "analysis", { model: "m", attempt: 2, queueWaitMs: 0 });
    expect(again.result).toBe("checkpointed");
    expect(again.result !== "missing" && again.outputs.analysis).toBe("A");
    expect(again.result !== "missing" && again.view.stages.analysis).toMatchObject({ status: "completed", attempts: 1 });
    expect(await store.events(id)).toHaveLength(eventsBefore);
  });
});
