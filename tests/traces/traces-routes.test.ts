import { randomUUID } from "node:crypto";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import express, { type ErrorRequestHandler } from "express";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { createAssembler, decodeOtlpJson } from "@tracelane/trace-collector";
import { pipelineTrace, toOtlpJson, type StageSpec, type SyntheticSpan } from "@tracelane/trace-collector/testing";
import { createTraceReader } from "@tracelane/trace-store";
import { createTracesRouter, HttpError } from "@tracelane/api/testing";

const prefix = `test-api-traces-${randomUUID().slice(0, 8)}`;
const base = Date.parse("2025-06-01T12:00:00Z");
// The collector refuses spans dated outside a week before its clock: decode these as if it were then.
const DECODED_AT = base + 60_000;
let redis: Redis;
let server: Server;
let url: string;

const stage = (over: Partial<StageSpec>): StageSpec => ({
  stage: "analysis",
  model: "gpt-4.1",
  inputTokens: 1_000,
  outputTokens: 500,
  latencyMs: 100,
  ...over,
});
const cases = {
  cheap: [stage({})],
  failed: [stage({ model: "gpt-4.1-mini", error: "ProviderDown" })],
  slow: [stage({ model: "gemini-2.5-flash", latencyMs: 31_000 })],
};
const ids = {} as Record<keyof typeof cases, string>;
/** A trace some other OTLP client sent: no research id on any span. */
const foreignTraceId = randomUUID().replaceAll("-", "");

/** The minimal error handler the api's real one is a superset of. */
const errorHandler: ErrorRequestHandler = (err, _req, res, _next) => {
  if (err instanceof HttpError) {
    res.status(err.status).json({ error: { code: err.code, message: err.message, details: err.details ?? null } });
    return;
  }
  res.status(500).json({ error: { code: "internal_error", message: String(err) } });
};

beforeAll(async () => {
  redis = new Redis(inject("redisUrl"));
  // Data assembled by the collector's own code from OTLP/JSON, as from the span stream.
  const assembler = createAssembler({ redis, prefix, ttlSeconds: 600, anomalyStream: `${prefix}-anomaly-stream` });
  let i = 0;
  for (const [name, stages] of Object.entries(cases) as [keyof typeof cases, StageSpec[]][]) {
    const spans = pipelineTrace({ startMs: base + ++i * 1_000, stages });
    ids[name] = spans[0]!.traceId;
    await assembler.ingest(decodeOtlpJson(toOtlpJson(spans), DECODED_AT).spans);
  }
  const foreign: SyntheticSpan = {
    traceId: foreignTraceId,
    spanId: randomUUID().replaceAll("-", "").slice(0, 16),
    name: "GET /inventory",
    kind: "server",
    service: "someone-elses-service",
    startMs: base + 10_000,
    endMs: base + 10_020,
    attributes: { "http.request.method": "GET" },
  };
  await assembler.ingest(decodeOtlpJson(toOtlpJson([foreign]), DECODED_AT).spans);
  const app = express();
  app.use(createTracesRouter({ reader: createTraceReader(redis, { prefix }), jaegerUiUrl: "http://localhost:16686/" }));
  app.use(errorHandler);
  server = await new Promise<Server>((resolve) => {
    const s = app.listen(0, "127.0.0.1", () => resolve(s));
  });
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  if (server) await new Promise((r) => server.close(r));
  const keys = await redis.keys(`${prefix}*`);
  if (keys.length > 0) await redis.del(...keys);
  await redis.quit();
});

const get = async (path: string): Promise<{ status: number; body: any; type: string | null }> => {
  const res = await fetch(`${url}${path}`);
  const type = res.headers.get("content-type");
  return { status: res.status, type, body: type?.includes("json") ? await res.json() : await res.text() };
};
const listed = async (query: string) => {
  const { status, body } = await get(`/v1/traces${query}`);
  expect(status).toBe(200);
  const byId = Object.fromEntries(Object.entries(ids).map(([k, v]) => [v, k]));
  return (body.traces as { traceId: string }[]).map((t) => byId[t.traceId]);
};

describe("GET /v1/traces", () => {
  it("lists traces newest first, each with links", async () => {
    const { body } = await get("/v1/traces");
    expect(body.traces.map((t: { traceId: string }) => t.traceId)).toEqual([ids.slow, ids.failed, ids.cheap]);
    expect(body.traces[0].links).toEqual({
      self: `/v1/traces/${ids.slow}`,
      replay: `/v1/traces/${ids.slow}/replay`,
      jaeger: `http://localhost:16686/trace/${ids.slow}`,
    });
    expect(body.nextCursor).toBeNull();
  });

  it("lists research traces unless kind=all, which adds traces without a research id", async () => {
    expect(await listed("")).not.toContain(undefined);
    const all = await get("/v1/traces?kind=all");
    expect(all.body.traces.map((t: { traceId: string }) => t.traceId)).toEqual([foreignTraceId, ids.slow, ids.failed, ids.cheap]);
    expect((await get("/v1/traces?kind=research")).body.traces).toHaveLength(3);
    expect((await get("/v1/traces?kind=all&sort=cost")).body.traces).toHaveLength(4);
    expect((await get("/v1/traces?sort=duration")).body.traces.map((t: { traceId: string }) => t.traceId)).not.toContain(foreignTraceId);
    const bad = await get("/v1/traces?kind=foreign");
    expect(bad.status).toBe(400);
    expect(bad.body.error).toMatchObject({
      code: "invalid_query",
      details: [{ parameter: "kind", message: 'must be one of research, all (got "foreign")' }],
    });
  });

  it("applies every filter end to end", async () => {
    expect(await listed(`?since=${new Date(base + 2_000).toISOString()}`)).toEqual(["slow", "failed"]);
    expect(await listed(`?until=${base + 1_000}`)).toEqual(["cheap"]);
    expect(await listed("?minCostUsd=0.001")).toEqual(["slow", "cheap"]);
    expect(await listed("?minCostUsd=0.005")).toEqual(["cheap"]);
    expect(await listed("?minDurationMs=30000")).toEqual(["slow"]);
    expect(await listed("?status=error")).toEqual(["failed"]);
    expect(await listed("?model=gemini-2.5-flash")).toEqual(["slow"]);
    expect(await listed("?anomaly=error")).toEqual(["failed"]);
    expect(await listed("?anomaly=high_latency&status=ok")).toEqual(["slow"]);
    expect(await listed("?sort=duration&limit=1")).toEqual(["slow"]);
  });

  it("takes since/until as ISO 8601 or epoch ms on every route, and says both forms when neither parses", async () => {
    const iso = (ms: number) => new Date(ms).toISOString();
    expect(await listed(`?since=${iso(base + 2_000)}&until=${iso(base + 3_000)}`)).toEqual(["slow", "failed"]);
    expect(await listed(`?since=${base + 2_000}&until=${base + 3_000}`)).toEqual(["slow", "failed"]);
    // An offset is honoured: 14:00:02+02:00 is 12:00:02Z.
    expect(await listed(`?since=${encodeURIComponent("2025-06-01T14:00:02+02:00")}`)).toEqual(["slow", "failed"]);
    expect(await listed("?until=2025-06-01")).toEqual([]); // a date is its UTC midnight
    const costs = await get(`/v1/stats/costs?since=${iso(base)}&until=${iso(base + 10_000)}`);
    expect(costs.body).toMatchObject({ since: iso(base), until: iso(base + 10_000), sinceMs: base, untilMs: base + 10_000, traces: 3 });
    expect((await get(`/v1/anomalies?since=${iso(base)}`)).status).toBe(200);

    for (const [route, bad] of [
      ["/v1/traces", "since=June%201"],
      ["/v1/traces", "until=2025-06-01T12:00:00"], // no offset: whose 12:00?
      ["/v1/traces", "since=2025-02-30"],
      ["/v1/anomalies", "since=yesterday"],
      ["/v1/stats/costs", "until=soon"],
    ] as const) {
      const res = await get(`${route}?${bad}`);
      expect(res.status, `${route}?${bad}`).toBe(400);
      expect(res.body.error.message).toMatch(
        /must be an ISO 8601 time such as 2025-06-01T12:00:00Z .*or epoch milliseconds such as 1748779200000/,
      );
    }
  });

  it.each([
    ["/v1/stats/costs?until=9999999999999999", /until: must be epoch milliseconds up to 8640000000000000 \(the year 275760\)/],
    ["/v1/traces?since=8640000000000001", /since: must be epoch milliseconds up to 8640000000000000/],
    ["/v1/anomalies?since=9999999999999999", /since: must be epoch milliseconds up to/],
    ["/v1/traces?limit=0x10", /limit: must be an integer from 1 to 500 \(got "0x10"\)/],
    ["/v1/traces?limit=1e2", /limit: must be an integer from 1 to 500 \(got "1e2"\)/],
    ["/v1/traces?limit=%2016", /limit: must be an integer from 1 to 500 \(got " 16"\)/],
    ["/v1/traces?minCostUsd=0x1", /minCostUsd: must be a number of USD >= 0 \(got "0x1"\)/],
  ])("answers %s with a 400 that says why (not a 500, not a silent reading)", async (path, message) => {
    const res = await get(path);
    expect(res.status).toBe(400);
    expect(res.body.error.message).toMatch(message);
  });

  it("still takes plain decimals and the last representable instant", async () => {
    expect((await get("/v1/traces?limit=16&minCostUsd=0.5")).status).toBe(200);
    expect((await get("/v1/traces?minCostUsd=.5")).status).toBe(200);
    expect((await get("/v1/stats/costs?until=8640000000000000")).status).toBe(200);
  });

  it("pages with nextCursor and a ready-made next link", async () => {
    const first = await get("/v1/traces?limit=2&status=ok");
    expect(first.body.traces).toHaveLength(2);
    expect(first.body.links.next).toMatch(/^\/v1\/traces\?limit=2&status=ok&cursor=/);
    const second = await get(first.body.links.next);
    expect(second.body.traces).toEqual([]);
  });

  it("rejects a bad query with 400 invalid_query naming the parameter", async () => {
    const bad = await get("/v1/traces?minCostUsd=abc&status=broken&foo=1&limit=0");
    expect(bad.status).toBe(400);
    expect(bad.body.error.code).toBe("invalid_query");
    expect(bad.body.error.message).toMatch(/minCostUsd: must be a number of USD >= 0 \(got "abc"\)/);
    expect(bad.body.error.message).toMatch(/status: must be one of ok, error/);
    expect(bad.body.error.message).toMatch(/foo: unknown query parameter/);
    expect(bad.body.error.message).toMatch(/limit: must be an integer from 1 to 500/);
    expect(bad.body.error.details).toContainEqual({ parameter: "foo", message: expect.stringMatching(/allowed: kind, since, until/) });
    expect((await get("/v1/traces?since=yesterday")).body.error.message).toMatch(/since: must be an ISO 8601 time/);
    expect((await get("/v1/traces?since=2&until=1")).body.error.message).toMatch(/since: must not be after until/);
    expect((await get("/v1/traces?status=ok&status=error")).body.error.message).toMatch(/status: must be given once/);
    expect((await get("/v1/traces?cursor=nonsense")).body.error).toMatchObject({
      code: "invalid_query",
      message: expect.stringMatching(/cursor/),
    });
  });
});

describe("GET /v1/traces/:traceId", () => {
  it("returns the summary, the span tree, anomalies and a Jaeger link", async () => {
    const { status, body } = await get(`/v1/traces/${ids.failed}`);
    expect(status).toBe(200);
    expect(body.summary).toMatchObject({ traceId: ids.failed, status: "error", spanCount: 4, anomalyTypes: ["error"] });
    expect(body.tree).toHaveLength(1);
    expect(body.tree[0]).toMatchObject({ name: "POST /v1/research", depth: 0 });
    expect(body.tree[0].children[0].children[0]).toMatchObject({ name: "process research-analysis", stage: "analysis", status: "error" });
    expect(body.anomalies).toEqual([expect.objectContaining({ type: "error", model: "gpt-4.1-mini", stage: "analysis" })]);
    expect(body.links.jaeger).toBe(`http://localhost:16686/trace/${ids.failed}`);
  });

  it("answers 404 for an unknown trace and 400 for a malformed id", async () => {
    const missing = await get(`/v1/traces/${"0".repeat(31)}1`);
    expect(missing.status).toBe(404);
    expect(missing.body.error.code).toBe("not_found");
    const bad = await get("/v1/traces/not-a-trace");
    expect(bad.status).toBe(400);
    expect(bad.body.error.code).toBe("invalid_trace_id");
  });

  it("serves a plain-text replay", async () => {
    const { status, type, body } = await get(`/v1/traces/${ids.cheap}/replay`);
    expect(status).toBe(200);
    expect(type).toMatch(/^text\/plain/);
    expect(body).toMatch(/^trace [0-9a-f]{32} {2}POST \/v1\/research {2}ok/);
    expect(body).toMatch(/\n {6}✓ chat gpt-4\.1 {2}100 ms {2}\[analysis\] {2}gpt-4\.1 {2}tokens in 1,000 \/ out 500 {2}\$0\.006000\n/);
  });
});

describe("GET /v1/anomalies and /v1/stats/costs", () => {
  it("lists anomalies, filtered by type", async () => {
    const all = await get("/v1/anomalies");
    expect(all.body.anomalies.map((a: { type: string }) => a.type).sort()).toEqual(["error", "high_latency", "trace_duration_over_slo"]);
    const slow = await get("/v1/anomalies?type=trace_duration_over_slo");
    expect(slow.body.anomalies).toEqual([
      expect.objectContaining({ traceId: ids.slow, links: expect.objectContaining({ self: `/v1/traces/${ids.slow}` }) }),
    ]);
    expect((await get("/v1/anomalies?type=slow")).status).toBe(400);
  });

  it("reports costs per stage and model matching the price table", async () => {
    const { status, body } = await get(`/v1/stats/costs?since=${base}&until=${base + 10_000}`);
    expect(status).toBe(200);
    expect(body.since).toBe("2025-06-01T12:00:00.000Z");
    expect(body.byModel["gpt-4.1"].costUsd).toBeCloseTo(0.006, 12); // 1,000 x $2/M + 500 x $8/M
    expect(body.byModel["gemini-2.5-flash"].costUsd).toBeCloseTo(1_000 * 0.3e-6 + 500 * 2.5e-6, 12);
    expect(body.byModel["gpt-4.1-mini"]).toMatchObject({ calls: 1, errors: 1, errorRate: 1 });
    expect(body.byStage.analysis).toMatchObject({ calls: 3, costShare: 1 });
    expect(body.traces).toBe(3);
    expect(body.kind).toBe("research");
    // kind=all counts the foreign trace too (it made no model call).
    const all = await get(`/v1/stats/costs?since=${base}&until=${base + 20_000}&kind=all`);
    expect(all.body).toMatchObject({ kind: "all", traces: 4, calls: body.calls });
    expect((await get(`/v1/stats/costs?since=${base}&until=${base + 20_000}`)).body.traces).toBe(3);
    expect((await get("/v1/stats/costs?kind=mine")).body.error.details).toEqual([
      { parameter: "kind", message: 'must be one of research, all (got "mine")' },
    ]);
  });
});
