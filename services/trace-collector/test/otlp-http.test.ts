import type { AddressInfo } from "node:net";
import { createServer, type Server } from "node:http";
import { gzipSync } from "node:zlib";
import { JsonTraceSerializer, ProtobufTraceSerializer } from "@opentelemetry/otlp-transformer";
import { loadPriceTable } from "@tracelane/pricing";
import { createTraceReader } from "@tracelane/trace-store";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { createCollector, DEFAULT_RULES } from "../src/collector.js";
import { decodeExportResponse } from "../src/ingest/otlp-protobuf.js";
import { cleanup, connect, recordSdkTrace, uniquePrefix } from "./support.js";

const url = inject("redisUrl");
const redis = connect(url);
const consumerRedis = connect(url);
const prefix = uniquePrefix("otlphttp");
const reader = createTraceReader(redis, { prefix });
let server: Server;
let base: string;

beforeAll(async () => {
  const collector = createCollector({
    redis,
    consumerRedis,
    stream: `${prefix}-spans`,
    prefix,
    anomalyStream: `${prefix}-anomalies`,
    anomalyStreamMaxLen: 100,
    ttlSeconds: 600,
    maxSpansPerTrace: 5_000,
    prices: loadPriceTable(),
    rules: DEFAULT_RULES,
    consumer: "test",
    batchSize: 10,
    blockMs: 50,
    claimIdleMs: 60_000,
    claimIntervalMs: 60_000,
    deleteAcked: true,
    sweepIntervalMs: 60_000,
  });
  server = createServer(collector.app);
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await new Promise((r) => server.close(r));
  await cleanup(redis, prefix);
  await Promise.all([redis.quit(), consumerRedis.quit()]);
});

const post = (body: string | Uint8Array, type: string, headers: Record<string, string> = {}) =>
  fetch(`${base}/v1/traces`, { method: "POST", headers: { "content-type": type, ...headers }, body });

describe("OTLP/HTTP receiver", () => {
  it("assembles and prices a foreign service's spans sent as OTLP/JSON", async () => {
    const spans = recordSdkTrace({ service: "billing-svc" });
    const res = await post(Buffer.from(JsonTraceSerializer.serializeRequest(spans)!), "application/json");
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({});
    const trace = await reader.getTrace(spans[0]!.spanContext().traceId);
    expect(trace!.summary).toMatchObject({ spanCount: 5, rootService: "billing-svc", services: ["billing-svc"], models: ["gpt-4.1"] });
    expect(trace!.summary.costUsd).toBeCloseTo(0.006, 12);
    expect(trace!.spans.find((s) => s.call)!.call).toMatchObject({ responseModel: "gpt-4.1-2025-04-14", reportedCostUsd: 0.006 });
  });

  it("assembles and prices spans sent as OTLP/protobuf (gzip), answering in protobuf", async () => {
    const spans = recordSdkTrace({ service: "search-svc", model: "gpt-4.1-mini" });
    const body = gzipSync(Buffer.from(ProtobufTraceSerializer.serializeRequest(spans)!));
    const res = await post(body, "application/x-protobuf", { "content-encoding": "gzip" });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/application\/x-protobuf/);
    expect(decodeExportResponse(new Uint8Array(await res.arrayBuffer()))).toEqual({});
    const trace = await reader.getTrace(spans[0]!.spanContext().traceId);
    expect(trace!.summary.rootService).toBe("search-svc");
    expect(trace!.summary.costUsd).toBeCloseTo(1_000 * 0.4e-6 + 500 * 1.6e-6, 12);
  });

  it("answers 415 for other content types", async () => {
    const res = await post("hello", "text/plain");
    expect(res.status).toBe(415);
    expect(((await res.json()) as { message: string }).message).toMatch(/application\/json or application\/x-protobuf/);
  });

  it("answers 400 with a clear message for a body that cannot be decoded", async () => {
    const json = await post("{oops", "application/json");
    expect(json.status).toBe(400);
    expect(await json.json()).toMatchObject({ code: 3, message: expect.stringMatching(/not valid JSON/) });
    const proto = await post(Buffer.from([0x0a, 0xff, 0xff, 0xff]), "application/x-protobuf");
    expect(proto.status).toBe(400);
  });

  it("reports malformed spans as a partial success", async () => {
    const body = JSON.stringify({ resourceSpans: [{ scopeSpans: [{ spans: [{ traceId: "00", spanId: "01", name: "x" }] }] }] });
    const res = await post(body, "application/json");
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ partialSuccess: { rejectedSpans: 1, errorMessage: expect.stringMatching(/traceId/) } });
  });

  it("serves health, readiness and stats", async () => {
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    expect(await (await fetch(`${base}/readyz`)).json()).toEqual({ status: "ready" });
    const stats = (await (await fetch(`${base}/stats`)).json()) as Record<string, unknown>;
    expect(stats).toMatchObject({ spansStored: 10, tracesStored: 2, otlpHttpRequests: expect.any(Number), stream: { pending: 0 } });
  });
});
