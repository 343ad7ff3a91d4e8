import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { stageJobId } from "@tracelane/queue-contract";
import { postResearch, startApi, uid, type TestApi } from "./helpers.js";

let api: TestApi;

beforeAll(async () => {
  api = await startApi();
});
afterAll(async () => {
  await api.close();
});

const get = (path: string, init?: RequestInit) =>
  fetch(`${api.url}${path}`, init).then(async (res) => ({ status: res.status, body: (await res.json()) as any }));

async function completeResearch(id: string) {
  const usage = { inputTokens: 10, outputTokens: 20 };
  const stages = [
    ["analysis", "factcheck"],
    ["factcheck", "synthesis"],
    ["synthesis", undefined],
  ] as const;
  for (const [stage, next] of stages) {
    await api.store.stageStarted(id, stage, { model: "gpt-4.1-mini", attempt: 1, queueWaitMs: 4 });
    await api.store.stageCompleted(id, stage, {
      output: `${stage} out`,
      model: "gpt-4.1-mini",
      usage,
      costUsd: 0.001,
      latencyMs: 12,
      next,
    });
  }
  await api.store.completed(id);
}

describe("GET /v1/research/:id", () => {
  it("returns the queued research with its stages, totals and links", async () => {
    const created = await postResearch(api, { query: "how do heat pumps work?" });
    const res = await get(`/v1/research/${created.body.id}`);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      id: created.body.id,
      status: "queued",
      stage: "analysis",
      query: "how do heat pumps work?",
      traceId: created.body.traceId,
      stages: { analysis: { status: "queued", attempts: 0 }, factcheck: { status: "pending" }, synthesis: { status: "pending" } },
      totals: { inputTokens: 0, outputTokens: 0, costUsd: 0 },
      links: created.body.links,
    });
    expect(res.body).not.toHaveProperty("result");
    expect(res.body).not.toHaveProperty("error");
  });

  it("returns the result, per-stage usage and totals of a completed research", async () => {
    const { body } = await postResearch(api, { query: "completed one" });
    await completeResearch(body.id);
    const res = await get(`/v1/research/${body.id}`);
    expect(res.body).toMatchObject({
      status: "completed",
      stage: null,
      result: { analysis: "analysis out", factCheck: "factcheck out", finalReport: "synthesis out" },
      stages: {
        synthesis: {
          status: "completed",
          model: "gpt-4.1-mini",
          latencyMs: 12,
          queueWaitMs: 4,
          attempts: 1,
          usage: { inputTokens: 10, outputTokens: 20 },
        },
      },
      totals: { inputTokens: 30, outputTokens: 60 },
    });
    expect(res.body.totals.costUsd).toBeCloseTo(0.003);
  });

  it("answers 404 not_found for an unknown id", async () => {
    const res = await get(`/v1/research/${uid()}`);
    expect(res.status).toBe(404);
    expect(res.body.error.code).toBe("not_found");
  });

  it("answers 400 for an id that cannot be a research id", async () => {
    const res = await get("/v1/research/no:colons!");
    expect(res.status).toBe(400);
    expect(res.body.error).toMatchObject({ code: "invalid_request", details: [{ path: "params.id" }] });
  });

  it("answers 404 in the error shape for a route that does not exist", async () => {
    const res = await get("/v2/nothing");
    expect(res.status).toBe(404);
    expect(res.body.error.code).toBe("not_found");
  });
});

describe("DELETE /v1/research/:id", () => {
  it("cancels a queued research and removes its waiting analysis job", async () => {
    const { body } = await postResearch(api, { query: "cancel me" });
    const jobId = stageJobId(body.id, "analysis");
    expect(await api.queues.queue("analysis").getJob(jobId)).toBeDefined();

    const res = await get(`/v1/research/${body.id}`, { method: "DELETE" });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ id: body.id, status: "cancelled", stages: { analysis: { status: "skipped" } } });
    expect(await api.queues.queue("analysis").getJob(jobId)).toBeUndefined();
    expect((await api.store.events(body.id)).map((e) => e.type)).toEqual(["research.queued", "research.cancelled"]);
  });

  it("answers 409 already_finished with the status for a completed research", async () => {
    const { body } = await postResearch(api, { query: "done already" });
    await completeResearch(body.id);
    const res = await get(`/v1/research/${body.id}`, { method: "DELETE" });
    expect(res.status).toBe(409);
    expect(res.body.error).toMatchObject({ code: "already_finished", details: { id: body.id, status: "completed" } });
    expect(res.body.error.message).toMatch(/already finished with status "completed"/);
    expect((await api.store.get(body.id))?.status).toBe("completed");
  });

  it("answers 404 for an unknown research", async () => {
    const res = await get(`/v1/research/${uid()}`, { method: "DELETE" });
    expect(res.status).toBe(404);
    expect(res.body.error.code).toBe("not_found");
  });
});
