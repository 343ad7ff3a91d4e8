import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { anomalyField, traceKeys } from "@tracelane/trace-store";
import { useInMemoryTracing, type InMemoryTracing } from "@tracelane/tracing/testing";
import { postResearch, startApi, uid, type TestApi } from "./helpers.js";

let api: TestApi;
let tracing: InMemoryTracing;
const tracePrefix = `test-api-list-${uid()}:traces`;

beforeAll(async () => {
  tracing = useInMemoryTracing(); // so each research gets its request's trace id
  api = await startApi({ env: { TRACELANE_TRACE_PREFIX: tracePrefix } });
});
afterAll(async () => {
  const keys = await api.redis.keys(`${tracePrefix}:*`);
  if (keys.length) await api.redis.del(...keys);
  await api.close();
  await tracing.shutdown();
});

const get = (path: string) => fetch(`${api.url}${path}`).then(async (res) => ({ status: res.status, body: (await res.json()) as any }));

async function submit(query: string): Promise<{ id: string; traceId: string }> {
  const { status, body } = await postResearch(api, { query, options: { models: { factcheck: "gpt-4.1-mini" } } });
  expect(status).toBe(202);
  await new Promise((r) => setTimeout(r, 2)); // distinct createdAt
  return body;
}

describe("GET /v1/research", () => {
  it("lists researches newest first with status, stage, per-stage model, cost, duration, anomalies and links", async () => {
    const first = await submit("first question");
    const second = await submit("second question");
    await api.store.stageStarted(first.id, "analysis", { model: "gpt-4.1", attempt: 1, queueWaitMs: 4 });
    await api.store.stageCompleted(first.id, "analysis", {
      output: "analysis text",
      model: "gpt-4.1",
      usage: { inputTokens: 100, outputTokens: 50 },
      costUsd: 0.0006,
      latencyMs: 12.3,
      next: "factcheck",
    });
    // What the trace-collector stored for the first research's trace: two anomalies.
    const keys = traceKeys(tracePrefix);
    await api.redis.hset(keys.of(first.traceId).anomalies, anomalyField("high_latency", "a1"), "{}", anomalyField("retries", "a2"), "{}");

    const { status, body } = await get("/v1/research");
    expect(status).toBe(200);
    expect(body.researches.map((r: any) => r.id)).toEqual([second.id, first.id]);
    expect(body.nextCursor).toBeNull();
    expect(body.links).toEqual({ next: null });
    const row = body.researches[1];
    expect(row).toMatchObject({
      id: first.id,
      status: "running",
      stage: "factcheck",
      query: "first question",
      traceId: first.traceId,
      stages: {
        analysis: { status: "completed", model: "gpt-4.1", costUsd: 0.0006, latencyMs: 12.3, queueWaitMs: 4, attempts: 1 },
        factcheck: { status: "queued" },
        synthesis: { status: "pending" },
      },
      totals: { inputTokens: 100, outputTokens: 50, costUsd: 0.0006 },
      anomalyCount: 2,
      anomalyTypes: ["high_latency", "retries"],
      links: {
        self: `/v1/research/${first.id}`,
        events: `/v1/research/${first.id}/events`,
        trace: `/v1/traces/${first.traceId}`,
        ui: `/ui/traces/${first.traceId}`,
      },
    });
    expect(row.totals.latencyMs).toBeGreaterThanOrEqual(0);
    expect(row).not.toHaveProperty("partialResult");
    expect(body.researches[0]).toMatchObject({ id: second.id, status: "queued", anomalyCount: 0, anomalyTypes: [] });
  });

  it("filters by status and createdAt window, and pages with nextCursor and a next link that keeps the filters", async () => {
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await submit(`paged ${i}`)).id);
    await api.store.cancel(ids[0]!);
    const created = await Promise.all(ids.map(async (id) => (await api.store.get(id))!.createdAt));

    const since = created[1]!;
    const seen: string[] = [];
    let next: string | null = `/v1/research?status=queued&since=${encodeURIComponent(since)}&limit=2`;
    let pages = 0;
    while (next && pages < 5) {
      const page = await get(next);
      expect(page.status).toBe(200);
      expect(page.body.researches.every((r: any) => r.status === "queued")).toBe(true);
      seen.push(...page.body.researches.map((r: any) => r.id));
      next = page.body.links.next;
      if (next) {
        expect(next).toContain("status=queued");
        expect(next).toContain(`cursor=${encodeURIComponent(page.body.nextCursor)}`);
      }
      pages++;
    }
    expect(seen).toEqual([ids[4], ids[3], ids[2], ids[1]]);

    const cancelled = await get("/v1/research?status=cancelled");
    expect(cancelled.body.researches.map((r: any) => r.id)).toEqual([ids[0]]);
    const windowed = await get(`/v1/research?since=${encodeURIComponent(created[2]!)}&until=${encodeURIComponent(created[3]!)}`);
    expect(windowed.body.researches.map((r: any) => r.id)).toEqual([ids[3], ids[2]]);
  });

  it("answers 400 invalid_query naming the parameter and what is allowed", async () => {
    const cases: [string, string, RegExp][] = [
      ["status=done", "status", /must be one of queued, running, completed, failed, cancelled/],
      ["limit=0", "limit", /an integer from 1 to 200/],
      ["limit=201", "limit", /an integer from 1 to 200/],
      ["since=yesterday", "since", /ISO 8601/],
      ["since=2026-01-02&until=2026-01-01", "since", /must not be after until/],
      ["cursor=bogus", "cursor", /pass back nextCursor unchanged/],
      ["status=queued&status=running", "status", /must be given once/],
      ["sort=cost", "sort", /unknown query parameter; allowed: status, since, until, limit, cursor/],
    ];
    for (const [query, parameter, message] of cases) {
      const res = await get(`/v1/research?${query}`);
      expect(res.status, query).toBe(400);
      expect(res.body.error.code, query).toBe("invalid_query");
      expect(res.body.error.details, query).toEqual([{ parameter, message: expect.stringMatching(message) }]);
      expect(res.body.error.message, query).toContain(parameter);
    }
  });
});
