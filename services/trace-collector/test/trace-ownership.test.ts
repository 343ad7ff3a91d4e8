import { ApiKeys, keyIdOf } from "@tracelane/api-keys";
import { ATTR_OWNER, ATTR_RESEARCH_ID } from "@tracelane/pipeline";
import { createTraceReader } from "@tracelane/trace-store";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { createStreamHandler } from "../src/collector.js";
import { randomSpanId, randomTraceId, toOtlpJson, type SyntheticSpan } from "../src/testing/index.js";
import { startHttpCollector } from "./http-collector.js";
import { uniquePrefix } from "./support.js";

const OWNER_KEY = "owner-key-0123456789abcdef";
const OTHER_KEY = "other-key-0123456789abcdef";
const ADMIN_KEY = "admin-key-0123456789abcdef";
const keys = ApiKeys.fromEnv({ API_KEYS: `${OWNER_KEY} alice,${OTHER_KEY} bob,${ADMIN_KEY} ops admin` });

type Stack = Awaited<ReturnType<typeof startHttpCollector>>;
let keyed: Stack;
let keyless: Stack;

beforeAll(async () => {
  keyed = await startHttpCollector(inject("redisUrl"), uniquePrefix("owner-keyed"), { apiKeys: keys });
  keyless = await startHttpCollector(inject("redisUrl"), uniquePrefix("owner-keyless"), {});
});
afterAll(async () => {
  await keyed?.close();
  await keyless?.close();
});

const t0 = Date.now() - 60_000;
const span = (traceId: string, over: Partial<SyntheticSpan> = {}): SyntheticSpan => ({
  traceId,
  spanId: randomSpanId(),
  name: "work",
  kind: "internal",
  service: "svc",
  startMs: t0,
  endMs: t0 + 5,
  ...over,
});

/** What the api's request span looks like: SERVER, research id, and the owner key id (set by routes/research.ts). */
function apiRoot(traceId: string, owner?: string): SyntheticSpan {
  return span(traceId, {
    name: "POST /v1/research",
    kind: "server",
    service: "api",
    attributes: { [ATTR_RESEARCH_ID]: "r-1", ...(owner ? { [ATTR_OWNER]: owner } : {}) },
  });
}

/** Our own services' path: the span stream (createStreamHandler), trusted. */
const internal = (s: Stack, spans: SyntheticSpan[]) =>
  createStreamHandler(s.collector.assembler, s.collector.stats)([{ id: "1-0", fields: { otlp: toOtlpJson(spans) } }]);

async function otlp(s: Stack, spans: SyntheticSpan[], key?: string) {
  const res = await s.post(toOtlpJson(spans), "application/json", key ? { authorization: `Bearer ${key}` } : {});
  expect(res.status).toBe(200);
  return (await res.json()) as { partialSuccess?: { rejectedSpans: number; errorMessage: string } };
}

const spanCount = async (s: Stack, traceId: string) =>
  (await createTraceReader(s.redis, { prefix: s.collector.assembler.keys.prefix }).getTrace(traceId))?.summary.spanCount;

describe("a foreign (OTLP) span and a trace created by the api", () => {
  it("refuses a span from another member key, reporting it in partial_success, and stores nothing of it", async () => {
    const traceId = randomTraceId();
    const root = apiRoot(traceId, keyIdOf(OWNER_KEY));
    await internal(keyed, [root]);
    const refusedBefore = keyed.collector.stats.foreignSpansRefused;
    const body = await otlp(keyed, [span(traceId, { parentSpanId: root.spanId }), span(traceId, { parentSpanId: root.spanId })], OTHER_KEY);
    expect(body.partialSuccess?.rejectedSpans).toBe(2);
    expect(body.partialSuccess?.errorMessage).toMatch(/belongs to another API key/);
    expect(keyed.collector.stats.foreignSpansRefused - refusedBefore).toBe(2);
    expect(await spanCount(keyed, traceId)).toBe(1);
    const metrics = await (await fetch(`${keyed.base}/metrics`)).text();
    expect(metrics).toMatch(/tracelane_collector_spans_total\{tracelane_span_outcome="refused"\} [1-9]/);
  });

  it("accepts the span with the owner's key, and with an admin key", async () => {
    const traceId = randomTraceId();
    const root = apiRoot(traceId, keyIdOf(OWNER_KEY));
    await internal(keyed, [root]);
    expect(await otlp(keyed, [span(traceId, { parentSpanId: root.spanId })], OWNER_KEY)).toEqual({});
    expect(await otlp(keyed, [span(traceId, { parentSpanId: root.spanId })], ADMIN_KEY)).toEqual({});
    expect(await spanCount(keyed, traceId)).toBe(3);
  });

  it("refuses every member key while the api's span naming the owner has not arrived (a worker's span came first)", async () => {
    const traceId = randomTraceId();
    await internal(keyed, [span(traceId, { service: "analysis-worker", kind: "consumer" })]);
    expect((await otlp(keyed, [span(traceId)], OWNER_KEY)).partialSuccess?.rejectedSpans).toBe(1);
    expect(await spanCount(keyed, traceId)).toBe(1);
  });

  it("without keys configured, never lets an OTLP span join an internal trace", async () => {
    const traceId = randomTraceId();
    const root = apiRoot(traceId);
    await internal(keyless, [root]);
    const body = await otlp(keyless, [span(traceId, { parentSpanId: root.spanId })]);
    expect(body.partialSuccess?.rejectedSpans).toBe(1);
    expect(await spanCount(keyless, traceId)).toBe(1);
  });

  it("always stores internal spans, also into a trace an OTLP sender created; from then on the api's owner decides", async () => {
    const traceId = randomTraceId();
    expect(await otlp(keyed, [span(traceId, { name: "foreign root" })], OTHER_KEY)).toEqual({});
    await internal(keyed, [apiRoot(traceId, keyIdOf(OWNER_KEY))]);
    expect(await spanCount(keyed, traceId)).toBe(2);
    expect((await otlp(keyed, [span(traceId)], OTHER_KEY)).partialSuccess?.rejectedSpans).toBe(1);
    expect(await otlp(keyed, [span(traceId)], OWNER_KEY)).toEqual({});
    expect(await spanCount(keyed, traceId)).toBe(3);
  });

  it("gives an OTLP trace to the key that created it: another member key cannot add to it", async () => {
    const traceId = randomTraceId();
    expect(await otlp(keyed, [span(traceId)], OWNER_KEY)).toEqual({});
    expect((await otlp(keyed, [span(traceId)], OTHER_KEY)).partialSuccess?.rejectedSpans).toBe(1);
    expect(await otlp(keyed, [span(traceId)], OWNER_KEY)).toEqual({});
    expect(await spanCount(keyed, traceId)).toBe(2);
  });

  it("lets only an admin add to a trace stored before traces had an owner", async () => {
    const traceId = randomTraceId();
    const old = span(traceId, { name: "stored before the upgrade" });
    await keyed.redis.hset(
      keyed.collector.assembler.keys.of(traceId).spans,
      old.spanId,
      JSON.stringify({ ...old, durationMs: 5, status: "unset", attributes: {} }),
    );
    expect((await otlp(keyed, [span(traceId)], OWNER_KEY)).partialSuccess?.rejectedSpans).toBe(1);
    expect(await otlp(keyed, [span(traceId)], ADMIN_KEY)).toEqual({});
    expect(await keyed.redis.hlen(keyed.collector.assembler.keys.of(traceId).spans)).toBe(2);
  });

  it("reports malformed and refused spans of one request together", async () => {
    const traceId = randomTraceId();
    await internal(keyed, [apiRoot(traceId, keyIdOf(OWNER_KEY))]);
    const request = JSON.parse(toOtlpJson([span(traceId)])) as { resourceSpans: { scopeSpans: { spans: unknown[] }[] }[] };
    request.resourceSpans[0]!.scopeSpans[0]!.spans.push({ traceId: "zz", spanId: "00" });
    const res = await keyed.post(JSON.stringify(request), "application/json", { authorization: `Bearer ${OTHER_KEY}` });
    const body = (await res.json()) as { partialSuccess: { rejectedSpans: number; errorMessage: string } };
    expect(body.partialSuccess.rejectedSpans).toBe(2);
    expect(body.partialSuccess.errorMessage).toMatch(/1 span\(s\) malformed.*1 span\(s\) refused/);
  });
});
