import { afterEach, describe, expect, it } from "vitest";
import { postResearch, startApi, uid, type TestApi } from "./helpers.js";

let api: TestApi | undefined;
afterEach(async () => {
  await api?.close();
  api = undefined;
});

/** Jobs nobody runs (the test has no workers), so a stage queue holds `n` waiting. */
async function fill(a: TestApi, stage: "analysis" | "factcheck" | "synthesis", n: number) {
  const queue = a.queues.queue(stage);
  for (let i = 0; i < n; i++) await queue.add(stage, {} as never, { jobId: `filler-${uid()}` });
}

const snapshot = async (a: TestApi) => {
  const { research, queue } = await a.keys();
  const jobs = await Promise.all(
    (["analysis", "factcheck", "synthesis"] as const).map((s) => a.queues.queue(s).getJobCounts("waiting", "delayed", "prioritized")),
  );
  return { research: research.sort(), queue: queue.sort(), jobs };
};

describe("backpressure (MAX_QUEUE_DEPTH)", () => {
  it("answers POST /v1/research 503 queue_full with Retry-After while a stage queue is full, creating nothing, and accepts again once it drains", async () => {
    api = await startApi({ env: { MAX_QUEUE_DEPTH: "3", QUEUE_DEPTH_CACHE_MS: "0" } });
    await fill(api, "synthesis", 3);

    const before = await snapshot(api);
    const refused = await postResearch(api, { query: "no room" }, { "Idempotency-Key": `new-${uid()}` });
    expect(refused.status).toBe(503);
    expect(refused.headers.get("retry-after")).toBe("10");
    expect(refused.body.error.code).toBe("queue_full");
    expect(refused.body.error.details).toEqual({ stage: "synthesis", waiting: 3 });
    expect(refused.body.error.message).toContain("Nothing was created");
    // No record, no event stream, no index entry, no idempotency key, no job.
    expect(await snapshot(api)).toEqual(before);

    await api.queues.queue("synthesis").drain();
    const accepted = await postResearch(api, { query: "room again" });
    expect(accepted.status).toBe(202);
  });

  it("still answers an idempotent replay of an existing research while full (and a conflicting body with 409)", async () => {
    api = await startApi({ env: { MAX_QUEUE_DEPTH: "2", QUEUE_DEPTH_CACHE_MS: "0" } });
    const key = `replay-${uid()}`;
    const first = await postResearch(api, { query: "kept" }, { "Idempotency-Key": key });
    expect(first.status).toBe(202);
    await fill(api, "analysis", 1); // 2 waiting: the research's own job and a filler

    const replay = await postResearch(api, { query: "kept" }, { "Idempotency-Key": key });
    expect(replay.status).toBe(200);
    expect(replay.headers.get("idempotent-replayed")).toBe("true");
    expect(replay.body.id).toBe(first.body.id);

    const conflict = await postResearch(api, { query: "changed" }, { "Idempotency-Key": key });
    expect(conflict.status).toBe(409);
    expect(conflict.body.error.code).toBe("idempotency_conflict");

    // A key never used is new work: refused, and not remembered (after the drain it creates a research).
    const fresh = `fresh-${uid()}`;
    expect((await postResearch(api, { query: "new" }, { "Idempotency-Key": fresh })).status).toBe(503);
    await api.queues.queue("analysis").drain();
    const later = await postResearch(api, { query: "new" }, { "Idempotency-Key": fresh });
    expect(later.status).toBe(202);
    expect(later.headers.get("idempotent-replayed")).toBeNull();
  });

  it("reads the queues once per QUEUE_DEPTH_CACHE_MS, not on every POST", async () => {
    api = await startApi({ env: { MAX_QUEUE_DEPTH: "1", QUEUE_DEPTH_CACHE_MS: "60000" } });
    expect((await postResearch(api, { query: "first" })).status).toBe(202); // read: empty, kept for a minute
    expect((await postResearch(api, { query: "second" })).status).toBe(202); // the reading of a moment ago
  });

  it("refuses nothing with MAX_QUEUE_DEPTH=0", async () => {
    api = await startApi({ env: { MAX_QUEUE_DEPTH: "0" } });
    await fill(api, "analysis", 5);
    expect((await postResearch(api, { query: "unbounded" })).status).toBe(202);
  });

  it("counts queue_full rejections in tracelane_http_rejections_total", async () => {
    api = await startApi({ env: { MAX_QUEUE_DEPTH: "1", QUEUE_DEPTH_CACHE_MS: "0" } });
    await fill(api, "factcheck", 1);
    await postResearch(api, { query: "a" });
    const metrics = await (await fetch(`${api.url}/metrics`)).text();
    expect(metrics).toMatch(/^tracelane_http_rejections_total\{tracelane_rejection_reason="queue_full"\} 1$/m);
  });
});
