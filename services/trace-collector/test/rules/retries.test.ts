import { describe, expect, it } from "vitest";
import { retries } from "../../src/anomalies/rules/retries.js";
import { call } from "./calls.js";

const judge = (c: ReturnType<typeof call>) => retries.evaluate(c, {}, {});

describe("retries", () => {
  it("is one finding for a call that succeeded on its third attempt, valued at its two retries", () => {
    expect(judge(call({ attempts: [{ status: 503 }, { status: 503 }, { status: 200 }] }))).toMatchObject({
      value: 2,
      message: expect.stringMatching(/after 2 retries \(provider error\)/),
    });
    expect(judge(call({ attempts: [{ status: 200 }] }))).toBeUndefined();
  });

  it("leaves a call that failed in the end to the error rule", () => {
    expect(judge(call({ attempts: [{ status: 503 }, { status: 503 }] }))).toBeUndefined();
  });

  it("advises by the cause of the failed attempts: rate limits for 429s, provider health for 5xx, the timeout for timeouts", () => {
    expect(judge(call({ attempts: [{ status: 429 }, { status: 200 }] }))!.recommendation).toMatch(/rate-limited/);
    expect(judge(call({ attempts: [{ status: 500 }, { status: 200 }] }))!.recommendation).toMatch(/server errors/);
    expect(judge(call({ attempts: [{ status: 500 }, { status: 200 }] }))!.recommendation).not.toMatch(/rate/);
    expect(judge(call({ attempts: [{ error: "AbortError" }, { status: 200 }] }))!.recommendation).toMatch(/per-attempt timeout/);
  });
});
