import { describe, expect, it } from "vitest";
import { defaultsOf } from "../../src/anomalies/registry.js";
import { highLatency } from "../../src/anomalies/rules/high-latency.js";
import { call } from "./calls.js";

const judge = (c: ReturnType<typeof call>) => highLatency.evaluate(c, defaultsOf(highLatency), {});

describe("high_latency", () => {
  it("flags an answered call at 2000 ms and not at 1999.9 ms", () => {
    expect(judge(call({ latencyMs: 2_000 }))).toMatchObject({ value: 2_000, threshold: 2_000, unit: "ms" });
    expect(judge(call({ latencyMs: 1_999.9 }))).toBeUndefined();
  });

  it("does not flag a call that failed fast, however long its retries and backoff took", () => {
    const failedFast = call({
      attempts: [
        { status: 500, ms: 5 },
        { status: 500, ms: 5 },
        { status: 500, ms: 5 },
      ],
      backoffMs: 1_500,
    });
    expect(failedFast.span.durationMs).toBeGreaterThan(3_000);
    expect(judge(failedFast)).toBeUndefined();
  });

  it("times only the attempt that answered, not the failed ones and the backoff before it", () => {
    const retried = call({
      attempts: [
        { status: 503, ms: 5 },
        { status: 200, ms: 300 },
      ],
      backoffMs: 2_500,
    });
    expect(retried.span.durationMs).toBeGreaterThan(2_000);
    expect(retried.latencyMs).toBe(300);
    expect(judge(retried)).toBeUndefined();
    expect(
      judge(
        call({
          attempts: [
            { status: 503, ms: 5 },
            { status: 200, ms: 2_500 },
          ],
        }),
      )?.message,
    ).toMatch(/on its last of 2 attempts/);
  });

  it("recommends a smaller model or caching", () => {
    expect(highLatency.recommendation).toMatch(/smaller, faster model|cache/);
  });
});
