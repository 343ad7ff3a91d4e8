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

/** A call counts against its circuit when it failed for good: a transient error after its retries, or its budget ran out. */
const countsAgainstCircuit = (err: unknown) => isTransient(err) || err instanceof TaskCancelledError;

/**
 * Retry with backoff (honouring Retry-After) inside a total time budget, and a
 * circuit breaker per provider + model, so a dead model fails fast for every
 * job instead of burning each job's attempts.
 *
 * The order is breaker(budget(retry(call))): the breaker sees one outcome per
 * call, after its retries. A transient failure that a retry recovers (a reset
 * connection, one 503) never moves it; N calls in a row that failed even after
 * their retries (or ran out of budget) open it. With the breaker inside the
 * retry, every attempt counted, and a burst of client-side connection resets
 * across concurrent calls opened it while every call would have recovered
 * (issue 10: 1,961 researches failed with circuit_open).
 */
export class ModelPolicies {
  private readonly breakers = new Map<string, CircuitBreakerPolicy>();
  /** When each open circuit opened (cockatiel keeps it private); deleted when it closes. */
  private readonly openedAt = new Map<string, number>();

  constructor(
    private readonly config: ModelPolicyConfig,
    private readonly now: () => number = Date.now,
  ) {}

  private breaker(key: string): CircuitBreakerPolicy {
    let b = this.breakers.get(key);
    if (!b) {
      b = circuitBreaker(handleWhen(countsAgainstCircuit), {
        halfOpenAfter: this.config.breakerHalfOpenMs,
        breaker: new ConsecutiveBreaker(this.config.breakerThreshold),
      });
      b.onBreak(() => this.openedAt.set(key, this.now()));
      b.onReset(() => this.openedAt.delete(key));
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

  /** The keys whose circuit is open now (half-open counts as open: only its trial call goes through). */
  openCircuits(): string[] {
    return [...this.breakers].filter(([, b]) => b.state === CircuitState.Open || b.state === CircuitState.HalfOpen).map(([k]) => k);
  }

  /** When an open circuit lets its next trial call through (epoch ms); undefined when it is not open. */
  halfOpensAt(key: string): number | undefined {
    const b = this.breakers.get(key);
    if (!b || (b.state !== CircuitState.Open && b.state !== CircuitState.HalfOpen)) return undefined;
    return (this.openedAt.get(key) ?? this.now()) + this.config.breakerHalfOpenMs;
  }

  /**
   * Run `call` under the policies of `key`. Throws the last error when retries
   * are exhausted, BrokenCircuitError when the circuit is open, and
   * RetryBudgetExceededError when the budget runs out.
   */
  async execute<T>(key: string, call: (signal: AbortSignal) => Promise<T>, onRetry?: (info: AttemptInfo) => void): Promise<T> {
    const { maxRetries, retryBaseMs, retryMaxDelayMs, retryBudgetMs } = this.config;
    const retryPolicy = retry(handleWhen(isTransient), {
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
      return await wrap(this.breaker(key), budget, retryPolicy).execute(({ signal }) => call(signal));
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
