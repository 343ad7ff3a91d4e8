import {
  BrokenCircuitError,
  CircuitState,
  ConsecutiveBreaker,
  DelegateBackoff,
  TaskCancelledError,
  TimeoutStrategy,
  circuitBreaker,
  handleWhen,
  retry,
  timeout,
  wrap,
  type CircuitBreakerPolicy,
  type IRetryBackoffContext,
} from "cockatiel";
import { backoffDelay, isTransient } from "./transient.js";

export interface ModelPolicyConfig {
  /** Retries after the first attempt. */
  maxRetries: number;
  retryBaseMs: number;
  retryMaxDelayMs: number;
  /** All attempts of one call, backoff included, end by then. */
  retryBudgetMs: number;
  /** Consecutive failed calls that open a circuit. */
  breakerThreshold: number;
  /** How long an open circuit waits before letting one trial call through. */
  breakerHalfOpenMs: number;
}

export type CircuitStateName = "closed" | "open" | "half-open" | "isolated";

const STATE_NAMES: Record<CircuitState, CircuitStateName> = {
  [CircuitState.Closed]: "closed",
  [CircuitState.Open]: "open",
  [CircuitState.HalfOpen]: "half-open",
  [CircuitState.Isolated]: "isolated",
};

export interface AttemptInfo {
  attempt: number;
  delayMs: number;
  error: unknown;
}

/**
 * Retry with backoff (honouring Retry-After) inside a total time budget, and a
 * circuit breaker per provider + model, so a dead model fails fast for every
 * job instead of burning each job's attempts.
 */
export class ModelPolicies {
  private readonly breakers = new Map<string, CircuitBreakerPolicy>();

  constructor(private readonly config: ModelPolicyConfig) {}

  private breaker(key: string): CircuitBreakerPolicy {
    let b = this.breakers.get(key);
    if (!b) {
      b = circuitBreaker(handleWhen(isTransient), {
        halfOpenAfter: this.config.breakerHalfOpenMs,
        breaker: new ConsecutiveBreaker(this.config.breakerThreshold),
      });
      this.breakers.set(key, b);
    }
    return b;
  }

  state(key: string): CircuitStateName {
    return STATE_NAMES[this.breaker(key).state];
  }

  states(): Record<string, CircuitStateName> {
    return Object.fromEntries([...this.breakers].map(([k, b]) => [k, STATE_NAMES[b.state]]));
  }

  /**
   * Run `call` under the policies of `key`. Throws the last error when retries
   * are exhausted, BrokenCircuitError when the circuit is open, and
   * RetryBudgetExceededError when the budget runs out.
   */
  async execute<T>(key: string, call: (signal: AbortSignal) => Promise<T>, onRetry?: (info: AttemptInfo) => void): Promise<T> {
    const { maxRetries, retryBaseMs, retryMaxDelayMs, retryBudgetMs } = this.config;
    const retryPolicy = retry(handleWhen((err) => isTransient(err) && !(err instanceof BrokenCircuitError)), {
      maxAttempts: maxRetries,
      backoff: new DelegateBackoff((ctx: IRetryBackoffContext<unknown>) =>
        backoffDelay(ctx.attempt, "error" in ctx.result ? ctx.result.error : undefined, { baseMs: retryBaseMs, maxMs: retryMaxDelayMs }),
      ),
    });
    const listener = onRetry
      ? retryPolicy.onRetry((e) => onRetry({ attempt: e.attempt, delayMs: e.delay, error: "error" in e ? e.error : undefined }))
      : undefined;
    // Nothing is left running once the call returns, so there is nothing to abort then (and an
    // abort per call costs two DOMExceptions: ours and the openai client's).
    const budget = timeout(retryBudgetMs, { strategy: TimeoutStrategy.Aggressive, abortOnReturn: false });
    try {
      return await wrap(budget, retryPolicy, this.breaker(key)).execute(({ signal }) => call(signal));
    } catch (err) {
      if (err instanceof TaskCancelledError) throw new RetryBudgetExceededError(retryBudgetMs);
      throw err;
    } finally {
      listener?.dispose();
    }
  }
}

/** Every attempt of one model call together took longer than LLM_RETRY_BUDGET_MS. */
export class RetryBudgetExceededError extends Error {
  override readonly name = "RetryBudgetExceededError";
  constructor(readonly budgetMs: number) {
    super(`the model call did not succeed within its retry budget of ${budgetMs} ms (LLM_RETRY_BUDGET_MS)`);
  }
}

export { BrokenCircuitError };
