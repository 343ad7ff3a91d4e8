import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import type { SpanRecord, TraceSummary } from "@tracelane/trace-store";
import { describe, expect, it } from "vitest";
import { loadRules } from "../src/anomalies/config.js";
import { baselineAnomaly, callAnomalies, DEFAULT_RULES, retryAnomaly, traceAnomalies } from "../src/anomalies/rules.js";
import { summarizeTrace, traceStatus } from "../src/assemble/summary.js";

const ctx = { stage: "analysis", detectedAt: "2025-01-01T00:00:00.000Z" };

function call(over: { durationMs?: number; inputTokens?: number; outputTokens?: number; costUsd?: number | null; status?: SpanRecord["status"] } = {}): SpanRecord {
  const durationMs = over.durationMs ?? 100;
  return {
    traceId: "a".repeat(32),
    spanId: "b".repeat(16),
    name: "chat gpt-4.1",
    kind: "client",
    service: "analysis-worker",
    startMs: 1_000,
    endMs: 1_000 + durationMs,
    durationMs,
    status: over.status ?? "ok",
    attributes: over.status === "error" ? { "error.type": "RateLimitError" } : {},
    call: {
      model: "gpt-4.1",
      inputTokens: over.inputTokens ?? 10,
      outputTokens: over.outputTokens ?? 10,
      cachedInputTokens: 0,
      costUsd: over.costUsd === undefined ? 0.001 : over.costUsd,
    },
  };
}

const types = (list: { type: string }[]) => list.map((a) => a.type);

describe("per-call rules", () => {
  it("flags high_latency at 2000 ms and not at 1999 ms", () => {
    expect(types(callAnomalies(call({ durationMs: 2_000 }), DEFAULT_RULES, ctx))).toEqual(["high_latency"]);
    expect(types(callAnomalies(call({ durationMs: 1_999.9 }), DEFAULT_RULES, ctx))).toEqual([]);
  });

  it("flags high_tokens at 8000 tokens in+out and not at 7999", () => {
    expect(types(callAnomalies(call({ inputTokens: 6_000, outputTokens: 2_000 }), DEFAULT_RULES, ctx))).toEqual(["high_tokens"]);
    expect(types(callAnomalies(call({ inputTokens: 6_000, outputTokens: 1_999 }), DEFAULT_RULES, ctx))).toEqual([]);
  });

  it("flags high_cost at $0.10 (even as a float sum) and not at $0.0999", () => {
    expect(types(callAnomalies(call({ costUsd: 0.1 }), DEFAULT_RULES, ctx))).toEqual(["high_cost"]);
    expect(types(callAnomalies(call({ costUsd: 0.07 + 0.03 - 1e-17 }), DEFAULT_RULES, ctx))).toEqual(["high_cost"]);
    expect(types(callAnomalies(call({ costUsd: 0.0999 }), DEFAULT_RULES, ctx))).toEqual([]);
  });

  it("flags a failed call as error and an unknown model as unpriced_model, with recommendations", () => {
    const [err] = callAnomalies(call({ status: "error" }), DEFAULT_RULES, ctx);
    expect(err).toMatchObject({ type: "error", stage: "analysis", model: "gpt-4.1", message: expect.stringMatching(/RateLimitError/) });
    expect(err!.recommendation).toMatch(/fall back/);
    const [unpriced] = callAnomalies(call({ costUsd: null }), DEFAULT_RULES, ctx);
    expect(unpriced).toMatchObject({ type: "unpriced_model", value: 20 });
  });

  it("attaches the recommendation that fits each problem", () => {
    const all = callAnomalies(call({ durationMs: 5_000, inputTokens: 9_000, costUsd: 0.5 }), DEFAULT_RULES, ctx);
    const rec = Object.fromEntries(all.map((a) => [a.type, a.recommendation]));
    expect(rec.high_latency).toMatch(/smaller.*model|cach/i);
    expect(rec.high_tokens).toMatch(/truncate|summari/i);
    expect(rec.high_cost).toMatch(/cheaper model/i);
  });

  it("does nothing for spans that are not model calls", () => {
    const { call: _omit, ...plain } = call({ durationMs: 10_000 });
    expect(callAnomalies(plain, DEFAULT_RULES, ctx)).toEqual([]);
  });

  it("skips disabled rules", () => {
    expect(callAnomalies(call({ durationMs: 5_000 }), { ...DEFAULT_RULES, disabled: ["high_latency"] }, ctx)).toEqual([]);
  });
});

describe("retries rule", () => {
  const span = (attrs: SpanRecord["attributes"]): SpanRecord => ({ ...call(), name: "x", attributes: attrs });
  it("flags a job attempt of 2 and not attempt 1", () => {
    expect(retryAnomaly(span({ "messaging.bullmq.job.attempt": 2 }), DEFAULT_RULES, ctx)?.type).toBe("retries");
    expect(retryAnomaly(span({ "messaging.bullmq.job.attempt": 1 }), DEFAULT_RULES, ctx)).toBeUndefined();
  });
  it("flags an HTTP resend_count of 1 and not 0, recommending a look at provider health", () => {
    const a = retryAnomaly(span({ "http.request.resend_count": 1, "http.response.status_code": 429 }), DEFAULT_RULES, ctx);
    expect(a).toMatchObject({ type: "retries", value: 1, message: expect.stringMatching(/429/) });
    expect(a!.recommendation).toMatch(/provider health|rate limit/i);
    expect(retryAnomaly(span({ "http.request.resend_count": 0 }), DEFAULT_RULES, ctx)).toBeUndefined();
  });
});

describe("adaptive latency rule", () => {
  it("stays silent below the minimum sample count", () => {
    expect(baselineAnomaly(call({ durationMs: 10_000 }), { p95: 100, samples: 19 }, DEFAULT_RULES, ctx)).toBeUndefined();
  });
  it("flags a call at k x p95 and not just below it", () => {
    expect(baselineAnomaly(call({ durationMs: 300 }), { p95: 100, samples: 20 }, DEFAULT_RULES, ctx)).toMatchObject({
      type: "latency_vs_baseline",
      threshold: 300,
    });
    expect(baselineAnomaly(call({ durationMs: 299 }), { p95: 100, samples: 20 }, DEFAULT_RULES, ctx)).toBeUndefined();
  });
});

describe("per-trace rules", () => {
  const summary = (costUsd: number, durationMs: number) =>
    ({ traceId: "t", costUsd, durationMs, queueWaitMs: 0, modelTimeMs: 0, byStage: {} }) as unknown as TraceSummary;
  it("flags a trace at the $0.50 budget and not at $0.4999", () => {
    expect(types(traceAnomalies(summary(0.5, 10), DEFAULT_RULES, ctx.detectedAt))).toEqual(["trace_cost_over_budget"]);
    expect(types(traceAnomalies(summary(0.4999, 10), DEFAULT_RULES, ctx.detectedAt))).toEqual([]);
  });
  it("flags a trace at the 30 s SLO and not at 29,999 ms, as a trace-level anomaly", () => {
    const [a] = traceAnomalies(summary(0, 30_000), DEFAULT_RULES, ctx.detectedAt);
    expect(a).toMatchObject({ type: "trace_duration_over_slo", spanId: "" });
    expect(traceAnomalies(summary(0, 29_999), DEFAULT_RULES, ctx.detectedAt)).toEqual([]);
  });
});

describe("trace status", () => {
  const span = (id: string, parent: string | undefined, kind: SpanRecord["kind"], status: SpanRecord["status"], attrs: SpanRecord["attributes"] = {}, startMs = 0): SpanRecord => ({
    traceId: "t".repeat(32), spanId: id, ...(parent ? { parentSpanId: parent } : {}), name: id, kind, service: "s",
    startMs, endMs: startMs + 1, durationMs: 1, status, attributes: attrs,
  });
  it("is ok when a failed HTTP attempt was recovered by its caller", () => {
    expect(traceStatus([span("chat", undefined, "client", "ok"), span("post", "chat", "client", "error")])).toBe("ok");
  });
  it("is ok when a failed job attempt was retried successfully", () => {
    const msg = { "messaging.message.id": "j1" };
    expect(
      traceStatus([
        span("pub", undefined, "producer", "ok"),
        span("c1", "pub", "consumer", "error", msg, 1),
        span("chat1", "c1", "client", "error", {}, 2),
        span("c2", "pub", "consumer", "ok", msg, 10),
      ]),
    ).toBe("ok");
  });
  it("is error when the last job attempt failed", () => {
    expect(traceStatus([span("pub", undefined, "producer", "ok"), span("c1", "pub", "consumer", "error", { "messaging.message.id": "j1" })])).toBe("error");
  });
});

describe("rules configuration", () => {
  it("layers defaults, the rules file and env overrides", () => {
    const dir = mkdtempSync(path.join(tmpdir(), "rules-"));
    const file = path.join(dir, "rules.json");
    writeFileSync(file, JSON.stringify({ call: { latencyMs: 5_000 }, trace: { costUsd: 1 }, disabled: ["retries"] }));
    const r = loadRules(file, { traceCostUsd: 2 });
    expect(r.call).toEqual({ latencyMs: 5_000, tokens: 8_000, costUsd: 0.1 });
    expect(r.trace.costUsd).toBe(2);
    expect(r.disabled).toEqual(["retries"]);
  });
  it("names the bad field of a rules file", () => {
    const dir = mkdtempSync(path.join(tmpdir(), "rules-"));
    const file = path.join(dir, "rules.json");
    writeFileSync(file, JSON.stringify({ call: { latencyMS: 5 } }));
    expect(() => loadRules(file)).toThrow(/call.*latencyMS|Unrecognized key/);
  });
});

describe("summary", () => {
  it("splits queue wait from model time", () => {
    const consumer: SpanRecord = { ...call(), spanId: "p", name: "process q", kind: "consumer", attributes: { "messaging.queue.wait_ms": 25 }, durationMs: 450 };
    delete consumer.call;
    const chat: SpanRecord = { ...call({ durationMs: 400 }), spanId: "c", parentSpanId: "p" };
    const s = summarizeTrace("t", [consumer, chat], 0);
    expect(s.queueWaitMs).toBe(25);
    expect(s.modelTimeMs).toBe(400);
    expect(s.byStage.unknown?.calls).toBe(1);
  });
});
