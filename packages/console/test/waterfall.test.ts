import { describe, expect, it } from "vitest";
import { layoutWaterfall, niceTicks } from "../src/web/waterfall.js";
import type { Anomaly, SpanNode } from "../src/web/schemas.js";

const T0 = 1_000_000;
let nextId = 0;
function span(over: Partial<SpanNode> & { name: string; startMs: number; endMs: number }, children: SpanNode[] = []): SpanNode {
  return {
    spanId: `s${++nextId}`,
    kind: "internal",
    service: "svc",
    durationMs: over.endMs - over.startMs,
    status: "unset",
    attributes: {},
    depth: 0,
    children,
    ...over,
  };
}

/** A consumer span waiting 10 ms in its queue, whose model call made a 429 attempt, then a 200 one. */
function retriedStage() {
  const first = span({
    name: "POST",
    kind: "client",
    startMs: T0 + 30,
    endMs: T0 + 40,
    attributes: { "http.request.method": "POST", "http.response.status_code": 429, "http.request.resend_count": 0 },
  });
  const second = span({
    name: "POST",
    kind: "client",
    startMs: T0 + 60,
    endMs: T0 + 80,
    attributes: {
      "http.request.method": "POST",
      "http.response.status_code": 200,
      "http.request.resend_count": 1,
      "tracelane.retry.delay_ms": 20,
    },
  });
  const call = span(
    {
      name: "chat gpt-4.1",
      kind: "client",
      stage: "analysis",
      startMs: T0 + 25,
      endMs: T0 + 85,
      attributes: { "gen_ai.response.finish_reasons": ["stop"] },
      call: { model: "gpt-4.1", inputTokens: 100, outputTokens: 50, cachedInputTokens: 0, costUsd: 0.0006 },
    },
    [second, first],
  );
  const consumer = span(
    {
      name: "process research-analysis",
      kind: "consumer",
      stage: "analysis",
      startMs: T0 + 20,
      endMs: T0 + 100,
      attributes: { "tracelane.queue.wait_ms": 10 },
    },
    [call],
  );
  return { consumer, call, first, second };
}

describe("layoutWaterfall", () => {
  it("draws queue wait, processing and model time apart on the consumer row", () => {
    const { consumer } = retriedStage();
    const wf = layoutWaterfall([consumer], []);
    const row = wf.rows.find((r) => r.spanId === consumer.spanId)!;
    expect(wf.originMs).toBe(T0 + 10); // the wait starts before the first span
    expect(row.segments).toEqual([
      { kind: "queue", fromMs: 0, toMs: 10 },
      { kind: "processing", fromMs: 10, toMs: 15 },
      { kind: "model", fromMs: 15, toMs: 75 },
      { kind: "processing", fromMs: 75, toMs: 90 },
    ]);
    expect(row.queueWaitMs).toBe(10);
  });

  it("groups a model call's HTTP attempts under it, in time order, with their statuses", () => {
    const { consumer, call, first, second } = retriedStage();
    const wf = layoutWaterfall([consumer], []);
    expect(wf.rows.map((r) => r.spanId)).toEqual([consumer.spanId, call.spanId, first.spanId, second.spanId]);
    const callRow = wf.rows[1]!;
    expect(callRow.retryGroup).toEqual({ attempts: 2, failed: 1, statuses: [429, 200] });
    expect(callRow).toMatchObject({ model: "gpt-4.1", inputTokens: 100, outputTokens: 50, costUsd: 0.0006, finishReasons: ["stop"] });
    expect(wf.rows[2]).toMatchObject({ role: "http-attempt", inRetryGroup: true, httpStatus: 429, segments: [{ kind: "attempt-failed" }] });
    expect(wf.rows[3]).toMatchObject({
      role: "http-attempt",
      inRetryGroup: true,
      resendCount: 1,
      retryDelayMs: 20,
      segments: [{ kind: "attempt" }],
    });
  });

  it("does not group a call that made one attempt", () => {
    const attempt = span({
      name: "POST",
      kind: "client",
      startMs: T0 + 1,
      endMs: T0 + 5,
      attributes: { "http.request.method": "POST", "http.response.status_code": 200 },
    });
    const call = span(
      {
        name: "chat m",
        kind: "client",
        startMs: T0,
        endMs: T0 + 6,
        call: { model: "m", inputTokens: 1, outputTokens: 1, cachedInputTokens: 0, costUsd: null },
      },
      [attempt],
    );
    const wf = layoutWaterfall([call], []);
    expect(wf.rows[0]!.retryGroup).toBeUndefined();
    expect(wf.rows[1]!.inRetryGroup).toBe(false);
  });

  it("puts span anomalies on their row and trace anomalies apart", () => {
    const { consumer, call } = retriedStage();
    const base = {
      traceId: "t",
      value: 1,
      threshold: 1,
      unit: "count",
      message: "m",
      recommendation: "r",
      detectedAt: "2026-01-01T00:00:00Z",
    };
    const onCall: Anomaly = { ...base, type: "retries", spanId: call.spanId };
    const onTrace: Anomaly = { ...base, type: "trace_cost_over_budget", spanId: "" };
    const wf = layoutWaterfall([consumer], [onCall, onTrace]);
    expect(wf.rows.find((r) => r.spanId === call.spanId)!.anomalies).toEqual([onCall]);
    expect(wf.traceAnomalies).toEqual([onTrace]);
  });

  it("names a failed span's error type and message", () => {
    const failed = span({
      name: "chat m",
      startMs: T0,
      endMs: T0 + 1,
      status: "error",
      statusMessage: "provider down",
      attributes: { "error.type": "ProviderError" },
    });
    expect(layoutWaterfall([failed], []).rows[0]!.error).toBe("ProviderError: provider down");
  });
});

describe("niceTicks", () => {
  it("steps by 1, 2 or 5 times a power of ten", () => {
    expect(niceTicks(2166)).toEqual([0, 500, 1000, 1500, 2000]);
    expect(niceTicks(95)).toEqual([0, 20, 40, 60, 80]);
  });
});
