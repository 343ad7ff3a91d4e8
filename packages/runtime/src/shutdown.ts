type Step = { name: string; run: () => Promise<void> | void };

export interface ShutdownLogger {
  info(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

/**
 * Ordered, idempotent shutdown. Register steps in the order they must run
 * (stop HTTP -> close workers -> flush spans -> disconnect Redis); calling
 * `shutdown()` twice returns the same promise. `addFinal` steps run after
 * every `add` step whenever they were registered, so a bootstrap can register
 * "flush spans" and "disconnect Redis" before the service adds its own steps.
 */
export class Shutdown {
  private readonly steps: Step[] = [];
  private readonly finalSteps: Step[] = [];
  private running: Promise<void> | undefined;

  constructor(private readonly logger?: ShutdownLogger) {}

  add(name: string, run: Step["run"]): this {
    this.steps.push({ name, run });
    return this;
  }

  addFinal(name: string, run: Step["run"]): this {
    this.finalSteps.push({ name, run });
    return this;
  }

  get started(): boolean {
    return this.running !== undefined;
  }

  shutdown(reason = "shutdown"): Promise<void> {
    this.running ??= (async () => {
      const started = Date.now();
      this.logger?.info({ reason }, "shutting down");
      for (const step of [...this.steps, ...this.finalSteps]) {
        try {
          await step.run();
        } catch (err) {
          this.logger?.error({ err, step: step.name }, "shutdown step failed");
        }
      }
      this.logger?.info({ reason, ms: Date.now() - started }, "shutdown complete");
    })();
    return this.running;
  }

  /**
   * Run the steps, then exit 0; exit 1 if they take longer than graceMs (a
   * step that never returns must not keep the process up forever).
   */
  stopAndExit(reason: string, graceMs: number): void {
    if (this.started) return;
    const timer = setTimeout(() => {
      this.logger?.error({ graceMs }, "shutdown grace period exceeded (SHUTDOWN_GRACE_MS), exiting");
      process.exit(1);
    }, graceMs);
    timer.unref();
    void this.shutdown(reason).then(() => process.exit(0));
  }

  /** SIGTERM/SIGINT run the steps, then exit 0 (see stopAndExit); a second signal exits at once. */
  installSignalHandlers(opts: { graceMs?: number } = {}): void {
    const graceMs = opts.graceMs ?? 30_000;
    const onSignal = (signal: NodeJS.Signals) => {
      if (this.started) process.exit(130);
      this.stopAndExit(signal, graceMs);
    };
    process.on("SIGTERM", onSignal);
    process.on("SIGINT", onSignal);
  }
}
