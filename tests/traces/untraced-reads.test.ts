import { randomUUID } from "node:crypto";
import type { RedisClient } from "@tracelane/runtime";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { isolatedRun } from "@tracelane/launcher";
import { createRedis } from "@tracelane/runtime";
import { startStack, waitFor, type Stack } from "@tracelane/testkit";
import { createTraceReader, type TraceReader } from "@tracelane/trace-store";

/**
 * The api's reads and health checks do not fill the trace list: an api and a trace-collector as OS
 * processes (the span stream between them, as deployed), real HTTP, the traces the collector stored.
 */
const redisUrl = inject("redisUrl");
let redis: RedisClient;

beforeAll(() => {
  redis = createRedis(redisUrl, "producer");
});
afterAll(() => redis?.disconnect());

interface ApiWithCollector {
  stack: Stack;
  url: string;
  reader: TraceReader;
  prefix: string;
}

async function startApiWithCollector(env: Record<string, string> = {}): Promise<ApiWithCollector> {
  const { prefixes, env: isolated } = isolatedRun("reads");
  const stack = await startStack({
    redisUrl,
    replicas: { api: 1, "trace-collector": 1 },
    env: { ...isolated, LOG_LEVEL: "warn", ...env },
  });
  return { stack, url: stack.apiUrl!, reader: createTraceReader(redis, { prefix: prefixes.traces }), prefix: prefixes.queue };
}

async function stopAndClean(run: ApiWithCollector | undefined) {
  if (!run) return;
  await run.stack.stop();
  const keys = await redis.keys(`${run.prefix}*`);
  if (keys.length > 0) await redis.del(...keys);
}

/** Every GET and HEAD kind the api serves: research reads, the list, traces, stats, health. */
async function readEverything(url: string, researchId: string, traceparent?: string): Promise<number> {
  const paths = [
    `/v1/research/${researchId}`,
    "/v1/research",
    "/v1/traces",
    "/v1/anomalies",
    "/v1/stats/costs",
    "/healthz",
    "/readyz",
    "/v1/research/0000000000000000000000000000dead", // a 404 is a read too
  ];
  const headers: Record<string, string> = traceparent ? { traceparent } : {};
  for (const path of paths) await (await fetch(`${url}${path}`, { headers })).arrayBuffer();
  await (await fetch(`${url}/healthz`, { method: "HEAD", headers })).arrayBuffer();
  return paths.length + 1;
}

async function submit(url: string): Promise<{ id: string; traceId: string }> {
  const res = await fetch(`${url}/v1/research`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ query: `reads test ${randomUUID()}` }),
  });
  expect(res.status).toBe(202);
  return (await res.json()) as { id: string; traceId: string };
}

/** Trace ids the collector stored, newest first. */
async function storedTraces(reader: TraceReader): Promise<{ traceId: string; rootName: string }[]> {
  return (await reader.listTraces({ limit: 500 })).traces.map((t) => ({ traceId: t.traceId, rootName: t.rootName }));
}

/** The collector stored this trace: everything the api exported before it has been assembled too. */
const waitForStored = (reader: TraceReader, traceId: string) =>
  waitFor(async () => (await reader.getTrace(traceId)) ?? undefined, {
    timeoutMs: 20_000,
    intervalMs: 50,
    what: `trace ${traceId} in the store`,
  });

describe("api reads and health checks by default", () => {
  let run: ApiWithCollector | undefined;
  beforeAll(async () => {
    // Callers' traceparents are trusted here (the default trusts only keyed callers, and this api has no keys).
    run = await startApiWithCollector({ TRUST_INCOMING_TRACE_CONTEXT: "always" });
  });
  afterAll(() => stopAndClean(run));

  it("store no trace: after a research and a round of every read, only the POSTs are traces", async () => {
    const { url, reader } = run!;
    const first = await submit(url);
    await waitForStored(reader, first.traceId);
    await readEverything(url, first.id);
    await readEverything(url, first.id);
    // A later traced request: once its trace is stored, every span exported before it was ingested.
    const sentinel = await submit(url);
    await waitForStored(reader, sentinel.traceId);

    const traces = await storedTraces(reader);
    expect(traces.map((t) => t.rootName).sort()).toEqual(["POST /v1/research", "POST /v1/research"]);
    expect(traces.map((t) => t.traceId).sort()).toEqual([first.traceId, sentinel.traceId].sort());
  });

  it("continue a sampled traceparent on a GET: the read joins the caller's trace", async () => {
    const { url, reader } = run!;
    const research = await submit(url);
    const traceId = randomUUID().replaceAll("-", "");
    const callerSpanId = randomUUID().replaceAll("-", "").slice(0, 16);
    const res = await fetch(`${url}/v1/research/${research.id}`, { headers: { traceparent: `00-${traceId}-${callerSpanId}-01` } });
    expect(res.status).toBe(200);
    const trace = await waitForStored(reader, traceId);
    const server = trace.spans.find((s) => s.kind === "server");
    expect(server).toMatchObject({ name: "GET /v1/research/:id", parentSpanId: callerSpanId, service: "api" });
  });
});

describe("api reads with TRACELANE_TRACE_READS=true", () => {
  let run: ApiWithCollector | undefined;
  beforeAll(async () => {
    run = await startApiWithCollector({ TRACELANE_TRACE_READS: "true" });
  });
  afterAll(() => stopAndClean(run));

  it("store one trace per read, each rooted in its SERVER span", async () => {
    const { url, reader } = run!;
    const research = await submit(url);
    const post = await waitForStored(reader, research.traceId);
    const reads = await readEverything(url, research.id);
    // The POST and every read after it (the launcher's readiness polls came before).
    const expected = reads + 1;
    const since = post.summary.startMs;
    const traces = await waitFor(
      async () => {
        const stored = (await reader.listTraces({ since, limit: 500 })).traces;
        return stored.length >= expected ? stored : undefined;
      },
      { timeoutMs: 20_000, intervalMs: 100, what: `${expected} traces in the store` },
    );
    expect(traces).toHaveLength(expected);
    const names = traces.map((t) => t.rootName);
    for (const name of ["GET /v1/research/:id", "GET /v1/research", "GET /v1/traces", "GET /healthz", "GET /readyz", "HEAD /healthz"]) {
      expect(names, name).toContain(name);
    }
  });
});
