import { randomUUID } from "node:crypto";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { toNanoUsd } from "@tracelane/pricing";
import { ResearchStore, type StageRecord } from "@tracelane/research-store";

let redis: Redis;
let store: ResearchStore;
const newId = () => randomUUID().replaceAll("-", "");
const usage = { inputTokens: 10, outputTokens: 20 };

beforeAll(async () => {
  redis = new Redis(inject("redisUrl"));
  store = new ResearchStore(redis, { prefix: `test-${newId()}` });
  // Load every script once: a first EVALSHA answered NOSCRIPT would be resent later and change
  // the order in which the concurrent calls below reach Redis.
  const warm = await running();
  await store.stageRetrying(warm.id, "analysis", { error: { type: "t", message: "m" }, attempt: 2 });
  await store.stageCompleted(warm.id, "analysis", { output: "A", model: "m", usage, costUsd: 0, latencyMs: 1, next: "factcheck" });
  await store.stageCallAfterCancel(warm.id, "analysis", { model: "m", usage, costUsd: 0, latencyMs: 1 });
  await store.failed(warm.id, { stage: "factcheck", type: "t", message: "m" });
  await store.cancel((await running()).id);
});
afterAll(async () => {
  const keys = await redis.keys(`${store.prefix}:*`);
  if (keys.length) await redis.del(...keys);
  redis.disconnect();
});

/** A research whose analysis stage is running (attempt 1), with the records a worker holds. */
async function running(): Promise<{ id: string; record: StageRecord; next: StageRecord }> {
  const id = newId();
  await store.create({ id, query: "q", options: {}, traceId: null });
  const started = await store.stageStarted(id, "analysis", { model: "gpt-4.1", attempt: 1, queueWaitMs: 2 });
  if (started.result !== "applied") throw new Error(`stage did not start: ${started.result}`);
  return { id, record: started.record, next: started.view.stages.factcheck };
}

/** The worker's checkpoint: with the records it holds, it is one command (no read first). */
const checkpoint = ({ id, record, next }: { id: string; record: StageRecord; next: StageRecord }, costUsd = 0.01) =>
  store.stageCompleted(
    id,
    "analysis",
    { output: "A", model: "gpt-4.1", usage, costUsd, latencyMs: 5, next: "factcheck" },
    { stage: record, next },
  );

const eventTypes = async (id: string) => (await store.events(id)).map((e) => e.type);

describe("research transitions are atomic", () => {
  // Both calls go out on one connection in this order, so Redis runs the first call's commands
  // before the second's. Cancel used to read the record, then write every unfinished stage as
  // skipped: a checkpoint landing between the two was overwritten.
  it("a cancel racing a checkpoint leaves a consistent record: the running stage cancelled, the late checkpoint refused", async () => {
    const research = await running();
    const { id } = research;
    const [cancelled, saved] = await Promise.all([store.cancel(id), checkpoint(research)]);
    expect([cancelled, saved]).toEqual(["applied", "final"]);
    const loaded = (await store.load(id))!;
    expect(loaded.outputs).toEqual({});
    expect(loaded.view.stages.analysis.status).toBe("cancelled");
    expect(await eventTypes(id)).toEqual(["research.queued", "stage.started", "research.cancelled"]);
  });

  it("a final failure racing another attempt's checkpoint never leaves the stage failed without its usage beside an output", async () => {
    const research = await running();
    const { id } = research;
    const [failed, saved] = await Promise.all([
      store.failed(id, { stage: "analysis", type: "http_500", message: "boom" }),
      checkpoint(research),
    ]);
    expect([failed, saved]).toEqual(["applied", "final"]);
    const loaded = (await store.load(id))!;
    expect(loaded.outputs).toEqual({});
    expect(loaded.view).toMatchObject({ status: "failed", error: { stage: "analysis", type: "http_500" } });
    expect(loaded.view.stages.analysis).toMatchObject({ status: "failed", attempts: 1, error: { type: "http_500", message: "boom" } });
  });

  it("neither a retry nor a failure of one attempt overwrites a stage another attempt already checkpointed", async () => {
    const research = await running();
    const { id } = research;
    expect(await checkpoint(research)).toBe("applied");
    expect(await store.stageRetrying(id, "analysis", { error: { type: "timeout", message: "slow" }, attempt: 2 })).toBe("duplicate");
    expect(await store.failed(id, { stage: "analysis", type: "timeout", message: "slow" })).toBe("duplicate");
    const view = (await store.get(id))!;
    expect(view.status).toBe("running");
    expect(view.stages.analysis).toMatchObject({ status: "completed", usage, costUsd: 0.01 });
    expect(await eventTypes(id)).toEqual(["research.queued", "stage.started", "stage.completed"]);
  });

  it("stageRetrying puts the stage back to queued with the error and reports the research's status in its event", async () => {
    const { id } = await running();
    expect(await store.stageRetrying(id, "analysis", { error: { type: "http_503", message: "busy" }, attempt: 2 })).toBe("applied");
    expect((await store.get(id))!.stages.analysis).toMatchObject({
      status: "queued",
      attempts: 1,
      error: { type: "http_503", message: "busy" },
    });
    const retrying = (await store.events(id)).at(-1)!;
    expect(retrying).toMatchObject({
      type: "stage.retrying",
      status: "running",
      stage: "analysis",
      data: { attempt: 2, error: { type: "http_503" } },
    });
    await store.cancel(id);
    expect(await store.stageRetrying(id, "analysis", { error: { type: "x", message: "y" }, attempt: 3 })).toBe("final");
    expect(await store.stageRetrying(newId(), "analysis", { error: { type: "x", message: "y" }, attempt: 1 })).toBe("missing");
  });
});

describe("cancel while a stage runs", () => {
  it("marks the running stage cancelled and the rest skipped, and counts the call it made in the totals, once", async () => {
    const research = await running();
    const { id } = research;
    await checkpoint(research, 0.1);
    const next = await store.stageStarted(id, "factcheck", { model: "gemini-2.5-flash", attempt: 1, queueWaitMs: 1 });
    expect(next.result).toBe("applied");

    expect(await store.cancel(id)).toBe("applied");
    let view = (await store.get(id))!;
    expect(Object.fromEntries(Object.entries(view.stages).map(([s, r]) => [s, r.status]))).toEqual({
      analysis: "completed",
      factcheck: "cancelled",
      synthesis: "skipped",
    });
    expect(view.stages.factcheck.finishedAt).toBe(view.finishedAt);

    // The factcheck call finishes after the cancel: what it cost goes on the cancelled stage.
    const call = { model: "gemini-2.5-flash", usage: { inputTokens: 300, outputTokens: 40 }, costUsd: 0.2, latencyMs: 1234.5678 };
    expect(await store.stageCallAfterCancel(id, "factcheck", call)).toBe("applied");
    expect(await store.stageCallAfterCancel(id, "factcheck", call)).toBe("duplicate");
    expect(await store.stageCallAfterCancel(id, "analysis", call)).toBe("final"); // completed, not cancelled
    view = (await store.get(id))!;
    expect(view.stages.factcheck).toMatchObject({ status: "cancelled", usage: call.usage, costUsd: 0.2, latencyMs: 1234.6 });
    // $0.1 + $0.2 is 0.30000000000000004 in floats; the totals add nano-dollars.
    expect(view.totals).toMatchObject({ costUsd: 0.3, inputTokens: 310, outputTokens: 60 });
    expect(await eventTypes(id)).toEqual(["research.queued", "stage.started", "stage.completed", "stage.started", "research.cancelled"]);
  });

  it("records no call on a research that was not cancelled", async () => {
    const { id } = await running();
    expect(await store.stageCallAfterCancel(id, "analysis", { model: "m", usage, costUsd: 0.01, latencyMs: 1 })).toBe("final");
    expect(await store.stageCallAfterCancel(newId(), "analysis", { model: "m", usage, costUsd: 0.01, latencyMs: 1 })).toBe("missing");
    expect((await store.get(id))!.stages.analysis.usage).toBeUndefined();
  });
});

describe("readable numbers in the record", () => {
  it("stores costs to 1e-9 USD and latencies to 0.1 ms, and totals exactly the sum of the stage costs", async () => {
    const { id, record } = await running();
    const costs = { analysis: 0.1, factcheck: 0.2, synthesis: 0.0006739999999999999 } as const;
    await store.stageCompleted(
      id,
      "analysis",
      { output: "A", model: "m", usage, costUsd: costs.analysis, latencyMs: 812.34567, next: "factcheck" },
      { stage: record },
    );
    for (const [stage, next] of [
      ["factcheck", "synthesis"],
      ["synthesis", undefined],
    ] as const) {
      await store.stageStarted(id, stage, { model: "m", attempt: 1, queueWaitMs: 1 });
      await store.stageCompleted(id, stage, { output: stage, model: "m", usage, costUsd: costs[stage], latencyMs: 1.05, next });
    }
    const view = (await store.get(id))!;
    expect(view.stages.synthesis.costUsd).toBe(0.000674);
    expect(view.stages.analysis.latencyMs).toBe(812.3);
    expect(view.totals.costUsd).toBe(0.300674);
    const stageNanos = Object.values(view.stages).reduce((n, s) => n + toNanoUsd(s.costUsd!), 0);
    expect(toNanoUsd(view.totals.costUsd)).toBe(stageNanos);
    expect(JSON.stringify(view.totals.costUsd)).toBe("0.300674");
    const completed = (await store.events(id)).filter((e) => e.type === "stage.completed").map((e) => e.data?.costUsd);
    expect(completed).toEqual([0.1, 0.2, 0.000674]);
  });
});
