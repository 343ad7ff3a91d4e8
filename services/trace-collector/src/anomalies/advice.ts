import type { FailureCause } from "./model-calls.js";

/** What to do about a call that failed, by why it failed: a 500 is not a rate-limit problem. */
export const FAILED_CALL_ADVICE: Record<FailureCause, string> = {
  provider_error:
    "The provider answered with server errors (HTTP 5xx) on every attempt: check its status page, and set a fallback model or another provider for this stage.",
  rate_limit:
    "The provider rate-limited every attempt (HTTP 429): lower the stage's concurrency or rate limit, spread the load, or raise the provider's limits.",
  timeout:
    "The call timed out on every attempt: raise the per-attempt timeout if the model is just slow, cap its output tokens, or use a faster model.",
  connection:
    "The provider could not be reached: check the stage's base URL, DNS and network; a fallback provider keeps the stage running.",
  client_error:
    "The provider refused the request (HTTP 4xx): check the model name, the API key and the request options; retrying will not help.",
  unknown: "Retry transient errors with backoff, or fall back to another model or provider.",
};

/** What to do about a call that only succeeded after retrying, by why its attempts failed. */
export const RETRIED_CALL_ADVICE: Record<FailureCause, string> = {
  provider_error:
    "The provider answered with server errors (HTTP 5xx) before it succeeded: check its health; a fallback model avoids the wait.",
  rate_limit:
    "The provider rate-limited the call (HTTP 429) before it succeeded: spread the load, lower the stage's rate limit or raise the provider's limits.",
  timeout:
    "Attempts timed out before one succeeded: the per-attempt timeout may be too short for this model, or the provider is slow right now.",
  connection: "Connections to the provider failed before one succeeded: check the network path to the provider.",
  client_error: "The provider refused attempts (HTTP 4xx) before accepting one: check the request options.",
  unknown: "Check provider health and rate limits; spread the load or raise the limits.",
};
