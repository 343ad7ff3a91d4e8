import { request } from "node:http";
import { SpanKind } from "@opentelemetry/api";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { ATTR_RESEARCH_ID } from "@tracelane/pipeline";
import { stageJobId } from "@tracelane/queue-contract";
import { startRedisServer, type EphemeralRedis } from "@tracelane/testkit";
import { useInMemoryTracing, type InMemoryTracing } from "@tracelane/tracing/testing";
import { analysisCounts, postResearch, startApi, uid, type TestApi } from "./helpers.js";
import { ATTR_HTTP_RESPONSE_STATUS_CODE, ATTR_MESSAGING_MESSAGE_ID } from "@tracelane/tracing/attributes";

let api: TestApi;
let tracing: InMemoryTracing;

beforeAll(async () => {
  tracing = useInMemoryTracing();
  // These tests continue a caller's traceparent; who is trusted to is trace-context-trust.test.ts.
  api = await startApi({ env: { TRUST_INCOMING_TRACE_CONTEXT: "always" } });
});
afterAll(async () => {
  await api.close();
  await tracing.shutdown();
});
beforeEach(() => tracing.reset());

/** The request's SERVER span and the PRODUCER span of the analysis publish. */
function requestSpans() {
  const server = tracing.spanNamed("POST /v1/research");
  const producer = tracing.spanNamed("publish research-analysis");
  return { server, producer };
}

describe("POST /v1/research", () => {
  it("answers 202 with id, traceId and links and enqueues exactly one analysis job with the deterministic id", async () => {
    const before = await analysisCounts(api);
    const res = await postResearch(api, { query: "  What limits the range of EV batteries in winter?  " });

    expect(res.status).toBe(202);
    const { id } = res.body;
    expect(id).toMatch(/^[A-Za-z0-9_-]{26,32}$/);
    expect(res.body).toMatchObject({
      id,
      status: "queued",
      links: { self: `/v1/research/${id}`, events: `/v1/research/${id}/events` },
    });
    // Tracing is on (in-memory exporter), so the request has a trace and the research links to it.
    expect(res.body.traceId).toMatch(/^[0-9a-f]{32}$/);
    expect(res.body.links.trace).toBe(`/v1/traces/${res.body.traceId}`);
    expect(res.body.links.ui).toBe(`/ui/traces/${res.body.traceId}`); // the console's deep link
    expect(res.headers.get("location")).toBe(`/v1/research/${id}`);

    const after = await analysisCounts(api);
    expect(after.waiting).toBe((before.waiting ?? 0) + 1);
    const job = await api.queues.queue("analysis").getJob(stageJobId(id, "analysis"));
    expect(job?.data).toMatchObject({ researchId: id, stage: "analysis" });
    expect(job?.data.trace.traceparent).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-0[0-3]$/);
    for (const stage of ["factcheck", "synthesis"] as const) {
      expect(await api.queues.queue(stage).count()).toBe(0);
    }

    const view = await api.store.get(id);
    expect(view).toMatchObject({ id, status: "queued", query: "What limits the range of EV batteries in winter?", options: {} });
    expect(view?.traceId).toBe(res.body.traceId);
  });

  it("publishes inside the request: the PRODUCER span is a child of the SERVER span and the job carries it", async () => {
    const res = await postResearch(api, { query: "span tree" });
    expect(res.status).toBe(202);
    const { server, producer } = requestSpans();
    expect(server.kind).toBe(SpanKind.SERVER);
    expect(server.attributes[ATTR_HTTP_RESPONSE_STATUS_CODE]).toBe(202);
    expect(producer.kind).toBe(SpanKind.PRODUCER);
    expect(producer.spanContext().traceId).toBe(server.spanContext().traceId);
    expect(producer.parentSpanContext?.spanId).toBe(server.spanContext().spanId);
    expect(producer.attributes[ATTR_MESSAGING_MESSAGE_ID]).toBe(stageJobId(res.body.id, "analysis"));
    // The research id is on the trace from its first publish: the trace lists as a research's before a worker starts.
    expect(producer.attributes[ATTR_RESEARCH_ID]).toBe(res.body.id);

    expect(res.body.traceId).toBe(server.spanContext().traceId);
    const job = await api.queues.queue("analysis").getJob(stageJobId(res.body.id, "analysis"));
    // Sampled (01) and, for a trace the api started, random (02: W3C Level 2).
    expect(job?.data.trace.traceparent).toBe(`00-${producer.spanContext().traceId}-${producer.spanContext().spanId}-03`);
  });

  it("stores the requested models and cost limit on the research", async () => {
    const options = { models: { analysis: "gpt-4.1-mini", synthesis: "deepseek-chat" }, maxCostUsd: 0.25 };
    const res = await postResearch(api, { query: "q", options });
    expect(res.status).toBe(202);
    expect((await api.store.get(res.body.id))?.options).toEqual(options);
  });

  it("continues an incoming traceparent: the job's carrier and the returned traceId carry the caller's trace id", async () => {
    const traceId = uid();
    const callerSpanId = uid().slice(0, 16);
    const res = await postResearch(api, { query: "traced" }, { traceparent: `00-${traceId}-${callerSpanId}-01` });
    expect(res.status).toBe(202);
    expect(requestSpans().server.parentSpanContext?.spanId).toBe(callerSpanId);
    const job = await api.queues.queue("analysis").getJob(stageJobId(res.body.id, "analysis"));
    expect(job?.data.trace.traceparent).toContain(`-${traceId}-`);
    expect(res.body.traceId).toBe(traceId);
    expect(res.body.links.trace).toBe(`/v1/traces/${traceId}`);
    expect((await api.store.get(res.body.id))?.traceId).toBe(traceId);
  });
});

describe("POST /v1/research with Idempotency-Key", () => {
  it("returns the same research for the same key and body and does not enqueue twice", async () => {
    const key = `key-${uid()}`;
    const body = { query: "idempotent question", options: { maxCostUsd: 1 } };
    const first = await postResearch(api, body, { "idempotency-key": key });
    const countsAfterFirst = await analysisCounts(api);
    const again = await postResearch(api, body, { "idempotency-key": key });

    expect(first.status).toBe(202);
    expect(again.status).toBe(200);
    expect(again.headers.get("idempotent-replayed")).toBe("true");
    expect(again.body).toEqual(first.body);
    expect(again.headers.get("location")).toBe(`/v1/research/${first.body.id}`);
    expect(await analysisCounts(api)).toEqual(countsAfterFirst);
    // One research, one research.queued event: the replay wrote nothing.
    expect(await api.store.events(first.body.id)).toMatchObject([{ type: "research.queued" }]);
  });

  it("answers 409 idempotency_conflict for the same key with a different body and creates nothing", async () => {
    const key = `key-${uid()}`;
    await postResearch(api, { query: "original" }, { "idempotency-key": key });
    const keysBefore = (await api.keys()).research.length;
    const countsBefore = await analysisCounts(api);

    const res = await postResearch(api, { query: "something else" }, { "idempotency-key": key });
    expect(res.status).toBe(409);
    expect(res.body.error.code).toBe("idempotency_conflict");
    expect(res.body.error.message).toMatch(/new key/);
    expect((await api.keys()).research.length).toBe(keysBefore);
    expect(await analysisCounts(api)).toEqual(countsBefore);
  });

  it("publishes a replayed research that is still queued without its job (crash between create and enqueue)", async () => {
    const key = `key-${uid()}`;
    const body = { query: "orphaned" };
    const first = await postResearch(api, body, { "idempotency-key": key });
    const jobId = stageJobId(first.body.id, "analysis");
    await api.queues.queue("analysis").remove(jobId);
    expect(await api.queues.queue("analysis").getJob(jobId)).toBeUndefined();

    const again = await postResearch(api, body, { "idempotency-key": key });
    expect(again.status).toBe(200);
    expect(again.body.id).toBe(first.body.id);
    expect((await api.queues.queue("analysis").getJob(jobId))?.data).toMatchObject({ researchId: first.body.id, stage: "analysis" });
  });

  it("rejects an Idempotency-Key longer than 200 characters with 400 and creates nothing", async () => {
    const keysBefore = (await api.keys()).research.length;
    const res = await postResearch(api, { query: "q" }, { "idempotency-key": "k".repeat(201) });
    expect(res.status).toBe(400);
    expect(res.body.error).toMatchObject({ code: "invalid_request", details: [{ path: "headers.idempotency-key" }] });
    expect(res.body.error.message).toMatch(/at most 200 characters/);
    expect((await api.keys()).research.length).toBe(keysBefore);
  });
});

describe("POST /v1/research with Idempotency-Key sent twice", () => {
  let api: TestApi;
  beforeAll(async () => {
    api = await startApi();
  });
  afterAll(async () => {
    await api?.close();
  });

  /** fetch joins repeated headers into one; node:http sends the raw list as given. */
  const postWithRawHeaders = (headers: string[], body: string) =>
    new Promise<{ status: number; body: any }>((resolve, reject) => {
      const url = new URL("/v1/research", api.url);
      const req = request({ host: url.hostname, port: url.port, path: url.pathname, method: "POST", headers }, (res) => {
        let text = "";
        res.on("data", (c: Buffer) => (text += c.toString()));
        res.on("end", () => {
          try {
            resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) });
          } catch {
            reject(new Error(`HTTP ${res.statusCode} with a body that is not JSON: ${JSON.stringify(text)}`));
          }
        });
      });
      req.on("error", reject);
      req.end(body);
    });

  it("refuses two Idempotency-Key headers instead of joining them into a third key, and creates nothing", async () => {
    const keysBefore = (await api.keys()).research.length;
    const res = await postWithRawHeaders(
      ["Host", new URL(api.url).host, "content-type", "application/json", "Idempotency-Key", "k-one", "Idempotency-Key", "k-two"],
      JSON.stringify({ query: "Which key wins?" }),
    );
    expect(res.status).toBe(400);
    expect(res.body.error).toMatchObject({
      code: "invalid_request",
      details: [{ path: "headers.idempotency-key", message: expect.stringMatching(/must be sent once \(got 2 headers\)/) }],
    });
    expect((await api.keys()).research.length).toBe(keysBefore);
  });
});

describe("POST /v1/research while Redis is down", () => {
  let queueRedis: EphemeralRedis;
  let broken: TestApi;

  beforeAll(async () => {
    queueRedis = await startRedisServer();
    broken = await startApi({ queueRedisUrl: queueRedis.url, env: { ENQUEUE_TIMEOUT_MS: "2000" } });
    await Promise.all((["analysis", "factcheck", "synthesis"] as const).map((s) => broken.queues.queue(s).waitUntilReady()));
    await queueRedis.stop();
  });
  afterAll(async () => {
    await broken.close();
    await queueRedis.destroy();
  });

  it("marks the research failed (enqueue_failed) and answers 503 unavailable with Retry-After when the queue is unreachable", async () => {
    const res = await postResearch(broken, { query: "will not be queued" });
    expect(res.status).toBe(503);
    expect(res.headers.get("retry-after")).toBe("5");
    expect(res.body.error.code).toBe("unavailable");
    expect(res.body.error.message).toMatch(/Retry in a few seconds/);
    const { id } = res.body.error.details;
    const view = await broken.store.get(id);
    expect(view?.status).toBe("failed");
    expect(view?.error).toMatchObject({ stage: "analysis", type: "enqueue_failed" });
  });

  it("answers 503 and creates nothing when the research store is unreachable", async () => {
    const deadStore = await startApi({ storeRedisUrl: queueRedis.url, waitReady: false });
    try {
      const res = await postResearch(deadStore, { query: "nowhere to go" });
      expect(res.status).toBe(503);
      expect(res.body.error.code).toBe("unavailable");
      expect(res.body.error.message).not.toMatch(/ECONNREFUSED|Stream|ioredis/);
      expect((await deadStore.keys()).research).toEqual([]);
      expect(await deadStore.queues.queue("analysis").count()).toBe(0);
    } finally {
      await deadStore.close();
    }
  });
});
