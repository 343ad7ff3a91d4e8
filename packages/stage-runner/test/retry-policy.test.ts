import { describe, expect, it } from "vitest";
import {
  ContextLengthExceededError,
  InvalidModelRequestError,
  isFinalAttempt,
  ModelCallError,
  ProviderAuthError,
} from "@tracelane/stage-runner";

const provider = { baseURL: "http://llm.local/v1", model: "gpt-4.1", apiKeyVar: "LLM_API_KEY", modelVar: "ANALYSIS_MODEL" };

describe("isFinalAttempt", () => {
  it("lets BullMQ retry a transient model error while attempts remain", () => {
    const err = new ModelCallError(provider, "http_503", "503 unavailable", 503);
    expect(isFinalAttempt(err, 0, 3)).toBe(false);
    expect(isFinalAttempt(err, 1, 3)).toBe(false);
  });

  it("treats the last attempt as final", () => {
    expect(isFinalAttempt(new ModelCallError(provider, "timeout", "timed out"), 2, 3)).toBe(true);
  });

  it("never retries an auth failure, an invalid request or an oversized context", () => {
    expect(isFinalAttempt(new ProviderAuthError(provider, 401), 0, 3)).toBe(true);
    expect(isFinalAttempt(new InvalidModelRequestError(provider, 404, "no such model"), 0, 3)).toBe(true);
    expect(isFinalAttempt(new ContextLengthExceededError(provider, "too long"), 0, 3)).toBe(true);
  });
});

describe("error messages", () => {
  it("an auth failure names the provider and the variable to set, never a key", () => {
    const err = new ProviderAuthError(provider, 401);
    expect(err.message).toContain("http://llm.local/v1");
    expect(err.message).toContain("Set LLM_API_KEY");
    expect(err.type).toBe("provider_auth");
  });

  it("an unknown model points at the variable that chose it", () => {
    expect(new InvalidModelRequestError(provider, 404, "model not found").message).toContain("ANALYSIS_MODEL");
  });
});
