import { randomBytes, randomUUID } from "node:crypto";
import type { RedisClient } from "@tracelane/runtime";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { composeApi, loadEnv, type Api } from "@tracelane/api/testing";
import { createAssembler, decodeOtlpJson } from "@tracelane/trace-collector";
import { pipelineTrace, toOtlpJson } from "@tracelane/trace-collector/testing";
import { createTraceReader } from "@tracelane/trace-store";
import { createRedis, waitForRedis } from "@tracelane/runtime";
import { waitFor } from "@tracelane/testkit";
import { createLogger } from "@tracelane/tracing";
import { useInMemoryTracing, type InMemoryTracing } from "@tracelane/tracing/testing";

/**
 * A research, its events, its trace (detail and replay), the trace lists, anomalies and cost stats
 * belong to the API key that created the research: another member key gets what it would get for
 * something that does not exist, an admin key sees everything. Real api over HTTP on the test Redis,
 * traces assembled by the collector's own code.
 */

const key = (label: string) => `${label}-${randomBytes(12).toString("hex")}`;
const keys = { alice: key("alice"), bob: key("bob"), root: key("root") };
type Who = keyof typeof keys;

const run = randomUUID().slice(0, 8);
const prefixes = { queue: `owner-${run}`, research: `owner-${run}:research`, traces: `owner-${run}:traces` };
let connections: RedisClient[];
let tracing: InMemoryTracing;
let api: Api;
let url: string;
const researches = {} as Record<"alice" | "bob", { id: string; traceId: string; query: string }>;
const foreignTraceId = randomBytes(16).toString("hex");

async function call(who: Who | undefined, path: string, init: RequestInit = {}) {
  const res = await fetch(`${url}${path}`, {
    ...init,
    headers: { ...(who ? { authorization: `Bearer ${keys[who]}` } : {}), ...init.headers },
  });
  const type = res.headers.get("content-type") ?? "";
  const body: any = type.includes("json") ? await res.json() : await res.text();
  return { status: res.status, body };
}

/** A 404 for `id` must be the one a never-created id gets, but for the id itself. */
async function missingLike(who: Who, path: (id: string) => string, id: string, init?: RequestInit) {
  const other = id.replace(/^./, (c) => (c === "0" ? "1" : "0"));
  const missing = await call(who, path(other), init);
  expect(missing.status).toBe(404);
  return JSON.parse(JSON.stringify(missing.body).replaceAll(other, id));
}

beforeAll(async () => {
  tracing = useInMemoryTracing();
  const redisUrl = inject("redisUrl");
  connections = [createRedis(redisUrl, "producer"), createRedis(redisUrl, "producer"), createRedis(redisUrl, "producer")];
  // Fail-fast connections, as the api's own: a request before they are ready would be a 503.
  await Promise.all(connections.map((c) => waitForRedis(c)));
  api = composeApi({
    env: loadEnv({
      TRACELANE_QUEUE_PREFIX: prefixes.queue,
      TRACELANE_RESEARCH_PREFIX: prefixes.research,
      TRACELANE_TRACE_PREFIX: prefixes.traces,
      API_KEYS: `${keys.alice} alice member, ${keys.bob} bob, ${keys.root} root admin`,
    }),
    redis: connections[0]!,
    queueRedis: connections[1]!,
    logger: createLogger("api", { level: "silent" }),
  });
  url = `http://127.0.0.1:${await api.start({ port: 0, host: "127.0.0.1" })}`;

  for (const who of ["alice", "bob"] as const) {
    const query = `what ${who} asked ${run}`;
    const res = await call(who, "/v1/research", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ query }),
    });
    expect(res.status, JSON.stringify(res.body)).toBe(202);
    expect(res.body.traceId).toMatch(/^[0-9a-f]{32}$/);
    researches[who] = { id: res.body.id, traceId: res.body.traceId, query };
  }

  // Each research's trace as the collector assembles it (alice's with a failed stage: an anomaly), and a foreign trace.
  const assembler = createAssembler({
    redis: connections[2]!,
    prefix: prefixes.traces,
    ttlSeconds: 600,
    anomalyStream: `${prefixes.traces}-anomalies`,
  });
  const startMs = Date.now() - 60_000;
  const spans = [
    ...pipelineTrace({
      traceId: researches.alice.traceId,
      researchId: researches.alice.id,
      startMs,
      stages: [{ stage: "analysis", model: "gpt-4.1", inputTokens: 1_000, outputTokens: 500, latencyMs: 100, error: "ProviderDown" }],
    }),
    ...pipelineTrace({ traceId: researches.bob.traceId, researchId: researches.bob.id, startMs: startMs + 1_000 }),
    ...pipelineTrace({ traceId: foreignTraceId, startMs: startMs + 2_000 }).map((s) => ({ ...s, attributes: {} })),
  ];
  await assembler.ingest(decodeOtlpJson(toOtlpJson(spans)).spans);
  await (assembler as { close?: () => Promise<void> }).close?.();
  const reader = createTraceReader(connections[2]!, { prefix: prefixes.traces });
  await waitFor(async () => (await reader.listTraces({ kind: "all" })).traces.length === 3, { what: "three assembled traces" });
});

afterAll(async () => {
  await api?.close();
  const redis = connections[2]!;
  const stale = await redis.keys(`owner-${run}*`);
  if (stale.length) await redis.del(...stale);
  connections.forEach((c) => c.disconnect());
  await tracing.shutdown();
});

describe("a research belongs to the key that created it", () => {
  it("records the creating key's id (never the key) as owner", async () => {
    const view = await call("alice", `/v1/research/${researches.alice.id}`);
    expect(view.status).toBe(200);
    expect(view.body.owner).toMatch(/^key_[0-9a-f]{16}$/);
    expect(JSON.stringify(view.body)).not.toContain(keys.alice);
  });

  it("status: another member gets the 404 of a missing research; the owner and an admin get it", async () => {
    const path = (id: string) => `/v1/research/${id}`;
    const { id } = researches.alice;
    const asBob = await call("bob", path(id));
    expect(asBob).toEqual({ status: 404, body: await missingLike("bob", path, id) });
    expect((await call("alice", path(id))).status).toBe(200);
    expect((await call("root", path(id))).body.id).toBe(id);
  });

  it("events: another member gets 404; the owner's stream opens", async () => {
    const path = (id: string) => `/v1/research/${id}/events`;
    const { id } = researches.alice;
    expect(await call("bob", path(id))).toEqual({ status: 404, body: await missingLike("bob", path, id) });
    for (const who of ["alice", "root"] as const) {
      const controller = new AbortController();
      const res = await fetch(`${url}${path(id)}`, { headers: { authorization: `Bearer ${keys[who]}` }, signal: controller.signal });
      expect(res.status).toBe(200);
      expect(res.headers.get("content-type")).toMatch(/^text\/event-stream/);
      const first = await res.body!.getReader().read();
      expect(new TextDecoder().decode(first.value)).toContain("research.queued");
      controller.abort();
    }
  });

  it("list: a member lists only its own researches; an admin lists everyone's", async () => {
    const listed = async (who: Who) => ((await call(who, "/v1/research")).body.researches as { id: string }[]).map((r) => r.id);
    expect(await listed("alice")).toEqual([researches.alice.id]);
    expect(await listed("bob")).toEqual([researches.bob.id]);
    expect(await listed("root")).toEqual([researches.bob.id, researches.alice.id]);
    expect(JSON.stringify((await call("bob", "/v1/research?status=queued")).body)).not.toContain(researches.alice.query);
  });

  it("trace and replay: another member gets 404; the owner and an admin read them", async () => {
    const { traceId } = researches.alice;
    for (const path of [(t: string) => `/v1/traces/${t}`, (t: string) => `/v1/traces/${t}/replay`]) {
      expect(await call("bob", path(traceId))).toEqual({ status: 404, body: await missingLike("bob", path, traceId) });
      expect((await call("alice", path(traceId))).status).toBe(200);
      expect((await call("root", path(traceId))).status).toBe(200);
    }
    expect((await call("alice", `/v1/traces/${foreignTraceId}`)).status).toBe(404);
    expect((await call("root", `/v1/traces/${foreignTraceId}`)).status).toBe(200);
  });

  it("trace lists, anomalies and cost stats hold only the caller's traces; kind=all is for admins", async () => {
    const traceIds = async (who: Who, q = "") =>
      ((await call(who, `/v1/traces${q}`)).body.traces as { traceId: string }[]).map((t) => t.traceId);
    expect(await traceIds("alice")).toEqual([researches.alice.traceId]);
    expect(await traceIds("bob", "?sort=cost")).toEqual([researches.bob.traceId]);
    expect(await traceIds("root")).toEqual([researches.bob.traceId, researches.alice.traceId]);
    expect(await traceIds("root", "?kind=all")).toEqual([foreignTraceId, researches.bob.traceId, researches.alice.traceId]);
    const all = await call("bob", "/v1/traces?kind=all");
    expect(all.status).toBe(403);
    expect(all.body.error).toMatchObject({ code: "forbidden", details: { parameter: "kind" } });
    expect((await call("bob", "/v1/stats/costs?kind=all")).status).toBe(403);

    const anomalies = async (who: Who) =>
      ((await call(who, "/v1/anomalies")).body.anomalies as { traceId: string }[]).map((a) => a.traceId);
    expect(await anomalies("alice")).toContain(researches.alice.traceId);
    expect(await anomalies("root")).toContain(researches.alice.traceId);
    expect(await anomalies("bob")).not.toContain(researches.alice.traceId);

    const stats = async (who: Who) => (await call(who, "/v1/stats/costs")).body as { traces: number; calls: number };
    expect((await stats("alice")).traces).toBe(1);
    expect((await stats("bob")).traces).toBe(1);
    expect((await stats("root")).traces).toBe(2);

    // Nothing of alice's research reaches bob through any read.
    for (const path of ["/v1/research", "/v1/traces", "/v1/traces?sort=duration", "/v1/anomalies", "/v1/stats/costs"]) {
      const text = JSON.stringify((await call("bob", path)).body);
      for (const secret of [researches.alice.id, researches.alice.traceId, researches.alice.query])
        expect(text, path).not.toContain(secret);
    }
  });

  it("cancel: another member gets 404 and the research runs on; the owner (or an admin) cancels it", async () => {
    const path = (id: string) => `/v1/research/${id}`;
    const { id } = researches.alice;
    const del = { method: "DELETE" };
    expect(await call("bob", path(id), del)).toEqual({ status: 404, body: await missingLike("bob", path, id, del) });
    expect((await call("alice", path(id))).body.status).toBe("queued");
    expect((await call("alice", path(id), del)).body.status).toBe("cancelled");
    expect((await call("root", path(researches.bob.id), del)).body.status).toBe("cancelled");
  });
});
