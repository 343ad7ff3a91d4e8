import { APIConnectionError } from "openai";
import { describe, expect, it } from "vitest";
import { ModelPolicies, type ModelPolicyConfig } from "@tracelane/stage-runner";

const config = (overrides: Partial<ModelPolicyConfig>): ModelPolicyConfig => ({
  maxRetries: 2,
  retryBaseMs: 0,
  retryMaxDelayMs: 0,
  retryBudgetMs: 60_000,
  breakerThreshold: 1,
  breakerHalfOpenMs: 10_000,
  ...overrides,
});

/** A call that fails with a dropped connection (as a reset keep-alive socket does) `failures` times, then answers. */
function flaky(failures: number) {
  const calls = { n: 0 };
  const call = async () => {
    calls.n++;
    if (calls.n <= failures) throw new APIConnectionError({ message: "Connection error.", cause: new Error("socket hang up") });
    return "ok";
  };
  return { calls, call };
}

describe("ModelPolicies: the breaker counts calls after their retries", () => {
  it("never moves toward opening on a failure that a retry recovers", async () => {
    // Threshold 1: a single counted failure would open the circuit.
    const policies = new ModelPolicies(config({ breakerThreshold: 1, maxRetries: 2 }));
    for (let i = 0; i < 5; i++) {
      const { calls, call } = flaky(2);
      await expect(policies.execute("sim|gpt-4.1", call)).resolves.toBe("ok");
      expect(calls.n).toBe(3);
    }
    expect(policies.state("sim|gpt-4.1")).toBe("closed");
    expect(policies.openCircuits()).toEqual([]);
    expect(policies.halfOpensAt("sim|gpt-4.1")).toBeUndefined();
  });

  it("opens after N calls in a row failed even after their retries, then fails fast without calling, saying when it half-opens", async () => {
    const policies = new ModelPolicies(config({ breakerThreshold: 2, maxRetries: 1, breakerHalfOpenMs: 10_000 }), () => 1_000);
    for (let i = 0; i < 2; i++) {
      const { calls, call } = flaky(Infinity);
      await expect(policies.execute("sim|gpt-4.1", call)).rejects.toBeInstanceOf(APIConnectionError);
      expect(calls.n).toBe(2); // the first try and its one retry, for one counted failure
      expect(policies.state("sim|gpt-4.1")).toBe(i === 0 ? "closed" : "open");
    }
    const { calls, call } = flaky(0);
    await expect(policies.execute("sim|gpt-4.1", call)).rejects.toMatchObject({ isBrokenCircuitError: true });
    expect(calls.n).toBe(0);
    expect(policies.openCircuits()).toEqual(["sim|gpt-4.1"]);
    expect(policies.halfOpensAt("sim|gpt-4.1")).toBe(11_000);
    // Another model of the same provider is its own circuit.
    expect(policies.state("sim|gemini-2.5-flash")).toBe("closed");
  });
});
