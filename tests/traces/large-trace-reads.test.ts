import { randomBytes, randomUUID } from "node:crypto";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import express, { type ErrorRequestHandler } from "express";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { createAssembler, decodeOtlpJson } from "@tracelane/trace-collector";
import { toOtlpJson, type SyntheticSpan } from "@tracelane/trace-collector/testing";
import { createTraceReader } from "@tracelane/trace-store";
import { createTracesRouter } from "@tracelane/api/testing";

/**
 * Issue 12: a parent->child chain of 3,000+ spans made GET /v1/traces/:id and /replay answer 500, and a
 * 5,000-span chain made every later read slow. Read here through the api's traces router over HTTP.
 */
const prefix = `test-large-reads-${randomUUID().slice(0, 8)}`;
let redis: Redis;
let server: Server;
let url: string;
const traceId = randomBytes(16).toString("hex");
// Under TRACELANE_MAX_SPANS_PER_TRACE (5,000), with the 5 late spans.
const SPANS = 4_900;

const errorHandler: ErrorRequestHandler = (err, _req, res, _next) => {
  res.status(500).json({ error: { code: "internal_error", message: String(err) } });
};

beforeAll(async () => {
  redis = new Redis(inject("redisUrl"));
  const assembler = createAssembler({ redis, prefix, ttlSeconds: 600, anomalyStream: `${prefix}-anomaly-stream` });
  const t0 = Date.now() - 120_000;
  const spans: SyntheticSpan[] = [];
  for (let i = 0; i < SPANS; i++) {
    spans.push({
      traceId,
      spanId: randomBytes(8).toString("hex"),
      ...(i > 0 ? { parentSpanId: spans[i - 1]!.spanId } : {}),
      name: `hop ${i}`,
      kind: i % 2 ? "consumer" : "producer",
      service: "chain-svc",
      startMs: t0 + i,
      endMs: t0 + i + 1,
    });
  }
  await assembler.ingest(decodeOtlpJson(toOtlpJson(spans)).spans);
  // Then single spans, as a slow sender posts them: stored without re-assembling the whole trace each time.
  for (let i = 0; i < 5; i++) {
    const last = spans[spans.length - 1]!;
    const next = { ...last, spanId: randomBytes(8).toString("hex"), parentSpanId: last.spanId, name: `late ${i}` };
    spans.push(next);
    await assembler.ingest(decodeOtlpJson(toOtlpJson([next])).spans);
  }
  await assembler.close();
  const app = express();
  app.use(createTracesRouter({ reader: createTraceReader(redis, { prefix }) }));
  app.use(errorHandler);
  server = await new Promise<Server>((resolve) => {
    const s = app.listen(0, "127.0.0.1", () => resolve(s));
  });
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}, 60_000);

afterAll(async () => {
  if (server) await new Promise((r) => server.close(r));
  const keys = await redis.keys(`${prefix}*`);
  if (keys.length > 0) await redis.del(...keys);
  await redis.quit();
});

type Node = { depth: number; children: Node[] };
function maxDepth(tree: Node[]): number {
  let max = 0;
  const stack = [...tree];
  while (stack.length > 0) {
    const n = stack.pop()!;
    max = Math.max(max, n.depth);
    stack.push(...n.children);
  }
  return max;
}

describe("reading a 4,905-span parent->child chain", () => {
  it("GET /v1/traces/:id answers 200 with every span counted and the tree cut at the depth limit", async () => {
    const res = await fetch(`${url}/v1/traces/${traceId}`);
    expect(res.status).toBe(200);
    const body = (await res.json()) as { summary: { spanCount: number; tooDeepSpans: number; maxDepth: number }; tree: Node[] };
    expect(body.summary).toMatchObject({ spanCount: SPANS + 5, maxDepth: 1_000, tooDeepSpans: SPANS + 5 - 1_001 });
    expect(maxDepth(body.tree)).toBe(1_000);
  });

  it("GET /v1/traces/:id/replay answers 200", async () => {
    const res = await fetch(`${url}/v1/traces/${traceId}/replay`);
    expect(res.status).toBe(200);
    expect(await res.text()).toContain("hop 0");
  });
});
