import { UnrecoverableError } from "bullmq";
import {
  APIConnectionError,
  APIConnectionTimeoutError,
  APIError,
  AuthenticationError,
  BadRequestError,
  NotFoundError,
  PermissionDeniedError,
  UnprocessableEntityError,
} from "openai";

export interface ProviderRef {
  baseURL: string;
  model: string;
  /** Name of the env var holding the key (never the key). */
  apiKeyVar: string;
  /** Name of the env var choosing the model. */
  modelVar: string;
}

/** 401/403: retrying cannot help; the job fails at once with what to set. */
export class ProviderAuthError extends UnrecoverableError {
  readonly type = "provider_auth";
  constructor(provider: ProviderRef, status: number) {
    super(
      `The model provider at ${provider.baseURL} rejected the API key (HTTP ${status}) for model "${provider.model}". ` +
        `Set ${provider.apiKeyVar} to a valid key for this provider.`,
    );
  }
}

/** 400/404/422 other than context length: the request itself is wrong. */
export class InvalidModelRequestError extends UnrecoverableError {
  readonly type = "invalid_request";
  constructor(provider: ProviderRef, status: number, detail: string) {
    super(
      `The model provider at ${provider.baseURL} refused the request for model "${provider.model}" (HTTP ${status}): ${detail}. ` +
        (status === 404
          ? `Check that ${provider.modelVar} names a model this provider serves.`
          : "Check the model name and request options."),
    );
  }
}

/** The input does not fit the model's context window. */
export class ContextLengthExceededError extends UnrecoverableError {
  readonly type = "context_length_exceeded";
  /** The window the provider reported ("maximum context length is N tokens"), when it did. */
  readonly reportedLimit: number | undefined;
  constructor(provider: ProviderRef, detail: string) {
    super(
      `The input is too long for model "${provider.model}": ${detail}. Choose a model with a larger context window via ${provider.modelVar}.`,
    );
    const reported = /maximum context length is ([\d,]+) tokens/i.exec(detail)?.[1];
    this.reportedLimit = reported ? Number(reported.replaceAll(",", "")) : undefined;
  }
}

/** A transient failure (429, 5xx, timeout, connection, malformed body) that outlived the client's retries. */
export class ModelCallError extends Error {
  override readonly name = "ModelCallError";
  readonly type: string;
  /** The provider's Retry-After hint, for rate limits. */
  retryAfterMs: number | undefined;
  constructor(
    provider: ProviderRef,
    type: string,
    detail: string,
    readonly status?: number,
  ) {
    super(`Model call to "${provider.model}" at ${provider.baseURL} failed: ${detail}`);
    this.type = type;
  }
}

/**
 * Every model the stage could use has its circuit open (after repeated failed calls); calls fail
 * fast until one half-opens. The stage processor does not spend a job attempt on it: it delays the
 * job until `retryAt`. Thrown out of the processor (so final) only once the stage has waited longer
 * than CIRCUIT_OPEN_MAX_WAIT_MS.
 */
export class CircuitOpenError extends UnrecoverableError {
  override readonly name = "CircuitOpenError";
  readonly type = "circuit_open";
  constructor(
    readonly provider: ProviderRef,
    /** When the earliest of the open circuits lets a trial call through (epoch ms). */
    readonly retryAt: number,
    /** The models tried, primary first. */
    readonly models: string[] = [provider.model],
    detail?: string,
  ) {
    super(
      detail ??
        `Model "${provider.model}" at ${provider.baseURL} is failing repeatedly, so its circuit breaker is open and calls fail fast. ` +
          `Set a fallback model for this stage (e.g. ${provider.modelVar.replace(/_MODEL$/, "_FALLBACK_MODEL")}) or wait for the provider to recover.`,
    );
  }

  /** The primary's circuit and then its fallback's were open: wait for whichever half-opens first. */
  static both(primary: CircuitOpenError, fallback: CircuitOpenError): CircuitOpenError {
    const models = [...primary.models, ...fallback.models];
    return new CircuitOpenError(
      primary.provider,
      Math.min(primary.retryAt, fallback.retryAt),
      models,
      `Model "${primary.provider.model}" and its fallback "${fallback.provider.model}" are both failing repeatedly, so their circuit breakers are open and calls fail fast. ` +
        `Check the provider at ${primary.provider.baseURL}, or set ${primary.provider.modelVar.replace(/_MODEL$/, "_FALLBACK_MODEL")} to a model of another provider.`,
    );
  }
}

/** The next stage's estimated cost exceeds what is left of the research's maxCostUsd. */
export class BudgetExceededError extends UnrecoverableError {
  readonly type = "budget_exceeded";
}

/**
 * The research has a maxCostUsd but the stage's model has no price: the budget cannot be checked,
 * so the call is not made (fail closed). ALLOW_UNPRICED_MODELS=true lets it through.
 */
export class BudgetUnverifiableError extends UnrecoverableError {
  readonly type = "budget_unverifiable";
}

/**
 * The model the job would call is not allowed for its stage (`<STAGE>_ALLOWED_MODELS`): the api
 * refuses such requests, so this is a request from before the policy changed or one that went around it.
 */
export class ModelNotAllowedError extends UnrecoverableError {
  readonly type = "model_not_allowed";
}

/** The next call would take the research's spender past DAILY_SPEND_CAP_USD for today (UTC). */
export class DailySpendCapError extends UnrecoverableError {
  readonly type = "daily_spend_cap_reached";
}

/** Job data that does not match the queue contract: retrying cannot fix it. */
export class InvalidJobDataError extends UnrecoverableError {
  readonly type = "invalid_job_data";
}

/** Map what the openai client threw to one of our errors, with a stable name and type. */
export function classifyModelError(err: unknown, provider: ProviderRef): Error {
  if (err instanceof AuthenticationError || err instanceof PermissionDeniedError) {
    return new ProviderAuthError(provider, err.status);
  }
  if (err instanceof BadRequestError || err instanceof NotFoundError || err instanceof UnprocessableEntityError) {
    const code = (err as APIError).code ?? (err.error as { code?: string } | undefined)?.code;
    const detail = providerMessage(err);
    if (code === "context_length_exceeded" || /context length|context window|too many tokens/i.test(detail)) {
      return new ContextLengthExceededError(provider, detail);
    }
    return new InvalidModelRequestError(provider, err.status, detail);
  }
  if (err instanceof APIConnectionTimeoutError) return new ModelCallError(provider, "timeout", "timed out", undefined);
  if (err instanceof APIConnectionError) return new ModelCallError(provider, "connection_error", err.message);
  if (err instanceof APIError) {
    const status = err.status;
    const type = status === 429 ? "rate_limited" : status !== undefined ? `http_${status}` : "api_error";
    return new ModelCallError(provider, type, `${status ?? ""} ${providerMessage(err)}`.trim(), status);
  }
  if (err instanceof SyntaxError) return new ModelCallError(provider, "malformed_response", `unparseable response: ${err.message}`);
  return err instanceof Error ? err : new Error(String(err));
}

/** The provider's own message, without echoing anything key-like back. */
function providerMessage(err: APIError): string {
  const body = err.error as { message?: string } | undefined;
  const msg = body?.message ?? err.message;
  return msg.replace(/\b(sk|pk|rk)-[A-Za-z0-9_*.-]{4,}/g, "$1-***");
}

/** A stable error type for the research record and span: our `type`, else the name. */
export function errorTypeOf(err: unknown): string {
  if (err && typeof err === "object" && "type" in err && typeof (err as { type: unknown }).type === "string") {
    return (err as { type: string }).type;
  }
  return err instanceof Error ? err.name : "Error";
}

/** The model's structured answer did not match its schema, twice (it was asked again once). */
export class InvalidModelOutputError extends UnrecoverableError {
  readonly type = "invalid_model_output";
}

/** A claim check ran out of tool turns (MAX_TOOL_TURNS) without a verdict. */
export class ToolTurnsExhaustedError extends UnrecoverableError {
  readonly type = "tool_turns_exhausted";
}

/** The research was cancelled while one of its claims was checked: no further turn is paid for. */
export class ClaimCancelledError extends UnrecoverableError {
  readonly type = "cancelled";
}

/** What a failed attempt had already paid for (calls whose answers it threw away). */
export interface PaidSpend {
  usage: { inputTokens: number; outputTokens: number; cachedInputTokens?: number };
  costUsd: number | null;
}
const paidBy = new WeakMap<object, PaidSpend>();

/** `err`, remembered with what its attempt paid for before failing (so the record can still count it). */
export function withPaidSpend(err: unknown, spend: PaidSpend): unknown {
  const paid = spend.usage.inputTokens + spend.usage.outputTokens > 0 || (spend.costUsd ?? 0) > 0;
  if (paid && err && typeof err === "object") paidBy.set(err, spend);
  return err;
}

/** What the failed attempt behind `err` paid for, if anything. */
export const paidSpendOf = (err: unknown): PaidSpend | undefined => (err && typeof err === "object" ? paidBy.get(err) : undefined);
