import { describe, expect, it } from "vitest";
import { errorRule } from "../../src/anomalies/rules/error.js";
import { modelCalls } from "../../src/anomalies/model-calls.js";
import { call, callSpans } from "./calls.js";
import { ATTR_LLM_ATTEMPTS } from "@tracelane/pipeline";

const judge = (c: ReturnType<typeof call>) => errorRule.evaluate(c, {}, {});

describe("error", () => {
  it("is one finding for a call that failed after three attempts, with the attempts as its value", () => {
    const c = call({ attempts: [{ status: 500 }, { status: 500 }, { status: 500 }] });
    expect(c).toMatchObject({ attempts: 3, failed: true, cause: "provider_error", lastStatus: 500 });
    expect(judge(c)).toMatchObject({
      value: 3,
      unit: "count",
      message: expect.stringMatching(/failed after 3 attempts.*last attempt: 500/),
    });
  });

  it("advises by cause: provider errors, rate limits, timeouts, unreachable provider, refused request", () => {
    const advice = (attempts: Parameters<typeof call>[0]) => judge(call(attempts))!.recommendation!;
    expect(advice({ attempts: [{ status: 503 }, { status: 500 }] })).toMatch(/server errors \(HTTP 5xx\).*fallback model/);
    expect(advice({ attempts: [{ status: 503 }, { status: 500 }] })).not.toMatch(/rate/i);
    expect(advice({ attempts: [{ status: 429 }, { status: 429 }] })).toMatch(/rate-limited.*\(HTTP 429\)/);
    expect(advice({ attempts: [{ error: "AbortError", ms: 1_000 }] })).toMatch(/timed out.*timeout/);
    expect(advice({ attempts: [{ error: "ECONNREFUSED" }] })).toMatch(/could not be reached/);
    expect(advice({ attempts: [{ status: 404 }] })).toMatch(/refused the request \(HTTP 4xx\)/);
  });

  it("reads the cause from the call itself when its attempts were not traced (a foreign service)", () => {
    const [chat] = callSpans({ attempts: [{ error: "x" }], statusMessage: 'Model call to "gpt-4.1" failed: timed out' });
    const { [ATTR_LLM_ATTEMPTS]: _n, ...attributes } = chat!.attributes;
    const [c] = modelCalls([{ ...chat!, attributes }], new Map());
    expect(c).toMatchObject({ attempts: 1, cause: "timeout", stage: "unknown" });
    expect(judge(c!)!.recommendation).toMatch(/timed out/);
  });

  it("does not flag a call that succeeded, even after retries", () => {
    expect(judge(call({ attempts: [{ status: 500 }, { status: 200 }] }))).toBeUndefined();
  });
});
