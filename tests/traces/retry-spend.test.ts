import { randomUUID } from "node:crypto";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import express from "express";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { createAssembler, decodeOtlpJson } from "@tracelane/trace-collector";
import { pipelineTrace, toOtlpJson, type SyntheticSpan } from "@tracelane/trace-collector/testing";
import { createTraceReader } from "@tracelane/trace-store";
import { createTracesRouter } from "@tracelane/api/testing";
import {
  ATTR_ERROR_TYPE,
  ATTR_GEN_AI_RESPONSE_MODEL,
  ATTR_GEN_AI_USAGE_INPUT_TOKENS,
  ATTR_GEN_AI_USAGE_OUTPUT_TOKENS,
} from "@tracelane/tracing/attributes";

/**
 * Retry spend apart from useful spend in /v1/stats/costs: traces assembled by the collector's own
 * code, read back over HTTP through the api's traces router.
 */
const prefix = `test-retry-spend-${randomUUID().slice(0, 8)}`;
// Recent: the collector refuses spans dated outside its retention window.
const base = Date.now() - 60_000;
let redis: Redis;
let server: Server;
let url: string;

/**
 * Analysis ran twice: attempt 1's model call answered (and was paid for), then the attempt failed
 * (e.g. its checkpoint write did), and attempt 2 called the model again. Factcheck ran once.
 */
function retriedAfterPaidCall(): SyntheticSpan[] {
  const spans = pipelineTrace({
    startMs: base,
    stages: [
      { stage: "analysis", model: "gpt-4.1", inputTokens: 1_000, outputTokens: 500, latencyMs: 100, attempts: 2 },
      { stage: "factcheck", model: "gpt-4.1-mini", inputTokens: 1_000, outputTokens: 500, latencyMs: 100 },
    ],
  });
  const failedConsumer = spans.find((s) => s.kind === "consumer" && s.status === "error")!;
  const paidCall = spans.find((s) => s.parentSpanId === failedConsumer.spanId && s.name.startsWith("chat"))!;
  const { [ATTR_ERROR_TYPE]: _error, ...attributes } = paidCall.attributes ?? {};
  Object.assign(paidCall, {
    status: "ok",
    statusMessage: undefined,
    events: undefined,
    attributes: {
      ...attributes,
      [ATTR_GEN_AI_RESPONSE_MODEL]: "gpt-4.1",
      [ATTR_GEN_AI_USAGE_INPUT_TOKENS]: 1_000,
      [ATTR_GEN_AI_USAGE_OUTPUT_TOKENS]: 500,
    },
  });
  return spans;
}

beforeAll(async () => {
  redis = new Redis(inject("redisUrl"));
  const assembler = createAssembler({ redis, prefix, ttlSeconds: 600, anomalyStream: `${prefix}-anomaly-stream` });
  await assembler.ingest(decodeOtlpJson(toOtlpJson(retriedAfterPaidCall())).spans);
  const app = express();
  app.use(createTracesRouter({ reader: createTraceReader(redis, { prefix }) }));
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

describe("GET /v1/stats/costs retry spend", () => {
  it("counts the paid call of a failed job attempt as retry spend, apart from useful spend, per stage and model", async () => {
    const res = await fetch(`${url}/v1/stats/costs?since=${base - 1_000}&until=${base + 60_000}`);
    expect(res.status).toBe(200);
    const body = (await res.json()) as any;
    const gpt41 = 1_000 * 2e-6 + 500 * 8e-6; // $0.006 per analysis call
    const mini = 1_000 * 0.4e-6 + 500 * 1.6e-6; // $0.0012 for the factcheck call
    expect(body.byStage.analysis).toMatchObject({ calls: 2, errors: 0 });
    expect(body.byStage.analysis.costUsd).toBeCloseTo(2 * gpt41, 12);
    expect(body.byStage.analysis.retryCostUsd).toBeCloseTo(gpt41, 12);
    expect(body.byStage.analysis.usefulCostUsd).toBeCloseTo(gpt41, 12);
    expect(body.byModel["gpt-4.1"].retryCostUsd).toBeCloseTo(gpt41, 12);
    expect(body.byStage.factcheck).toMatchObject({ retryCostUsd: 0 });
    expect(body.byStage.factcheck.usefulCostUsd).toBeCloseTo(mini, 12);
    expect(body.retryCostUsd).toBeCloseTo(gpt41, 12);
    expect(body.usefulCostUsd).toBeCloseTo(gpt41 + mini, 12);
    // Exact in nano-dollars: retry + useful = cost.
    expect(Math.round(body.retryCostUsd * 1e9) + Math.round(body.usefulCostUsd * 1e9)).toBe(Math.round(body.costUsd * 1e9));
  });
});
