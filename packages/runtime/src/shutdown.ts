type Step = { name: string; run: () => Promise<void> | void };

export interface ShutdownLogger {
  info(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

/**
 * Ordered, idempotent shutdown. Register steps in the order they must run
 * (stop HTTP -> close workers -> flush spans -> disconnect Redis); calling
 * `shutdown()` twice returns the same promise.
 */
export class Shutdown {
  private readonly steps: Step[] = [];
  private running: Promise<void> | undefined;

  constructor(private readonly logger?: ShutdownLogger) {}

  add(name: string, run: Step["run"]): this {
    this.steps.push({ name, run });
    return this;
  }

  get started(): boolean {
    return this.running !== undefined;
  }

  shutdown(reason = "shutdown"): Promise<void> {
    this.running ??= (async () => {
      this.logger?.info({ reason }, "shutting down");
      for (const step of this.steps) {
        try {
          await step.run();
        } catch (err) {
          this.logger?.error({ err, step: step.name }, "shutdown step failed");
        }
      }
    })();
    return this.running;
  }

  /**
   * SIGTERM/SIGINT run the steps, then exit 0. A hard deadline guards against a
   * step that never returns; a second signal exits at once.
   */
  installSignalHandlers(opts: { graceMs?: number } = {}): void {
    const graceMs = opts.graceMs ?? 30_000;
    const onSignal = (signal: NodeJS.Signals) => {
      if (this.started) {
        process.exit(130);
      }
      const timer = setTimeout(() => {
        this.logger?.error({ graceMs }, "shutdown grace period exceeded, exiting");
        process.exit(1);
      }, graceMs);
      timer.unref();
      void this.shutdown(signal).then(() => process.exit(0));
    };
    process.on("SIGTERM", onSignal);
    process.on("SIGINT", onSignal);
  }
}
