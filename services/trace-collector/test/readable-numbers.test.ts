import { toNanoUsd } from "@tracelane/pricing";
import { createTraceReader } from "@tracelane/trace-store";
import { afterAll, describe, expect, inject, it } from "vitest";
import { decodeOtlpJson } from "../src/collector.js";
import { pipelineTrace, toOtlpJson } from "../src/testing/synthetic.js";
import { cleanup, connect, testAssembler, uniquePrefix } from "./support.js";

const redis = connect(inject("redisUrl"));
const prefix = uniquePrefix("readable");
afterAll(async () => {
  await cleanup(redis, prefix);
  await redis.quit();
});

/** Every `"<key>":<number>` in a JSON text, as the text shows the number. */
const numbersOf = (json: string, key: string) => [...json.matchAll(new RegExp(`"${key}":(-?[0-9.e+-]+)`, "g"))].map((m) => m[1]!);
/** Decimal places of a JSON number as a person reads it (5e-7 has 7). */
const decimals = (text: string) => {
  const [mantissa, exp = "0"] = text.split("e");
  return Math.max(0, (mantissa!.split(".")[1]?.length ?? 0) - Number(exp));
};

describe("trace JSON a person can read", () => {
  it("keeps costs to 1e-9 USD with totals exactly the sum of their calls, durations to 0.1 ms and ISO times", async () => {
    // $0.1 + $0.2 is 0.30000000000000004 in floats; 333 in + 1 out on gpt-4.1 is 0.0006739999999999999.
    // A whole second an hour ago (the collector refuses spans dated more than a week before now).
    const start = Math.floor(Date.now() / 1000) * 1000 - 3_600_000;
    const spans = pipelineTrace({
      startMs: start + 0.123456,
      stages: [
        { stage: "analysis", model: "gpt-4.1", inputTokens: 50_000, outputTokens: 0, latencyMs: 812.345678 },
        { stage: "factcheck", model: "gpt-4.1", inputTokens: 100_000, outputTokens: 0, latencyMs: 97.654321 },
        { stage: "synthesis", model: "gpt-4.1", inputTokens: 333, outputTokens: 1, latencyMs: 1.05 },
      ],
    });
    await testAssembler(redis, prefix).ingest(decodeOtlpJson(toOtlpJson(spans)).spans);
    const reader = createTraceReader(redis, { prefix });
    const trace = (await reader.getTrace(spans[0]!.traceId))!;
    const { summary } = trace;

    const callCosts = summary.calls.map((c) => c.costUsd!);
    expect(callCosts).toEqual([0.1, 0.2, 0.000674]);
    expect(summary.costUsd).toBe(0.300674);
    expect(toNanoUsd(summary.costUsd)).toBe(callCosts.reduce((n, c) => n + toNanoUsd(c), 0));
    expect(summary.byModel["gpt-4.1"]!.costUsd).toBe(0.300674); // the breakdown adds nano-dollars too

    const json = JSON.stringify({
      trace,
      list: await reader.listTraces({}),
      stats: await reader.costStats({ since: 0, until: Date.now() }),
    });
    const costs = numbersOf(json, "costUsd");
    expect(costs.length).toBeGreaterThan(10);
    for (const text of costs) expect(decimals(text), `costUsd ${text}`).toBeLessThanOrEqual(9);
    for (const key of ["durationMs", "modelTimeMs", "queueWaitMs"]) {
      for (const text of numbersOf(json, key)) expect(decimals(text), `${key} ${text}`).toBeLessThanOrEqual(1);
    }
    const chat = trace.spans.find((s) => s.name === "chat gpt-4.1")!;
    expect(chat.durationMs).toBe(812.3);

    expect(summary.startedAt).toBe(new Date(start).toISOString());
    expect(summary.startedAt).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.000Z$/);
    expect(summary.endedAt).toBe(new Date(summary.endMs).toISOString());
    for (const s of trace.spans) expect(s.startedAt).toBe(new Date(s.startMs).toISOString());
    expect(trace.tree[0]!.endedAt).toBe(new Date(trace.tree[0]!.endMs).toISOString());
    expect((await reader.listTraces({})).traces[0]).toMatchObject({ startedAt: summary.startedAt, endedAt: summary.endedAt });
  });
});
