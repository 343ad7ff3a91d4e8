import { randomUUID } from "node:crypto";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { ResearchStore } from "@tracelane/research-store";

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
      store.stageCompleted(id, "analysis", { output, model: "m", usage: { inputTokens: 1, outputTokens: 1 }, costUsd: 0, latencyMs: 1, next: "factcheck" });
    expect(await done("first")).toBe("applied");
    expect(await done("second")).toBe("duplicate");
    expect((await store.load(id))?.outputs.analysis).toBe("first");
    expect((await store.events(id)).filter((e) => e.type === "stage.completed")).toHaveLength(1);
  });
});
