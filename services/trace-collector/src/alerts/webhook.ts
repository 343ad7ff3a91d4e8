import type { Logger } from "@tracelane/tracing";
import { jaegerTraceUrl, type Anomaly } from "@tracelane/trace-store";

export interface WebhookOptions {
  url: string;
  /** Alerts waiting beyond this are dropped (counted), so a dead webhook cannot eat memory. */
  maxQueue?: number;
  maxAttempts?: number;
  baseDelayMs?: number;
  maxDelayMs?: number;
  timeoutMs?: number;
  concurrency?: number;
  jaegerUiUrl?: string;
  logger?: Pick<Logger, "warn" | "error">;
}

/** The JSON body POSTed for each new anomaly. */
export interface AlertPayload {
  kind: "tracelane.anomaly";
  anomaly: Anomaly;
  links: { jaeger?: string };
}

export interface WebhookStats {
  queued: number;
  inFlight: number;
  sent: number;
  failed: number;
  dropped: number;
  retries: number;
}

/** The webhook refused the request itself (4xx other than 429): retrying cannot help. */
class PermanentWebhookError extends Error {
  override readonly name = "PermanentWebhookError";
}

/**
 * Sends alerts to ALERT_WEBHOOK_URL in the background: a bounded in-memory queue, a few
 * concurrent senders, retries with exponential backoff and jitter on network errors, timeouts,
 * 429 and 5xx. `enqueue` never blocks ingest. At-most-once across restarts: the anomaly stream
 * (tracelane:anomalies) is the durable record.
 */
export class WebhookAlerter {
  private readonly queue: AlertPayload[] = [];
  private readonly counters: WebhookStats = { queued: 0, inFlight: 0, sent: 0, failed: 0, dropped: 0, retries: 0 };
  private workers = 0;
  private closed = false;
  private readonly idle = new Set<() => void>();
  private readonly abort = new AbortController();
  private readonly o: Required<Omit<WebhookOptions, "jaegerUiUrl" | "logger">> & Pick<WebhookOptions, "jaegerUiUrl" | "logger">;

  constructor(opts: WebhookOptions) {
    this.o = {
      maxQueue: 1_000,
      maxAttempts: 5,
      baseDelayMs: 250,
      maxDelayMs: 10_000,
      timeoutMs: 5_000,
      concurrency: 4,
      ...opts,
    };
  }

  enqueue(anomalies: readonly Anomaly[]): void {
    for (const anomaly of anomalies) {
      if (this.closed || this.queue.length >= this.o.maxQueue) {
        this.counters.dropped++;
        continue;
      }
      const jaeger = this.o.jaegerUiUrl ? jaegerTraceUrl(this.o.jaegerUiUrl, anomaly.traceId) : undefined;
      this.queue.push({ kind: "tracelane.anomaly", anomaly, links: jaeger ? { jaeger } : {} });
      // A free sender takes the alert at once (synchronously), so the bound counts waiting alerts only.
      if (this.workers < this.o.concurrency) this.spawn();
    }
  }

  stats(): WebhookStats {
    return { ...this.counters, queued: this.queue.length };
  }

  /** Wait up to `timeoutMs` for queued alerts to go out, then stop: the rest are dropped. */
  async flush(timeoutMs: number): Promise<void> {
    if (this.workers > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, timeoutMs);
        function done() {
          clearTimeout(timer);
          resolve();
        }
        this.idle.add(done);
      });
    }
    this.closed = true;
    this.counters.dropped += this.queue.length;
    this.queue.length = 0;
    this.abort.abort();
  }

  private spawn(): void {
    this.workers++;
    void (async () => {
      try {
        for (let next = this.queue.shift(); next; next = this.queue.shift()) {
          this.counters.inFlight++;
          try {
            await this.deliver(next);
            this.counters.sent++;
          } catch (err) {
            this.counters.failed++;
            this.o.logger?.warn({ err, type: next.anomaly.type, traceId: next.anomaly.traceId }, "alert webhook gave up");
          } finally {
            this.counters.inFlight--;
          }
        }
      } finally {
        this.workers--;
        if (this.workers === 0) for (const done of [...this.idle]) done();
      }
    })();
  }

  private async deliver(payload: AlertPayload): Promise<void> {
    const body = JSON.stringify(payload);
    for (let attempt = 1; ; attempt++) {
      try {
        const res = await fetch(this.o.url, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body,
          signal: AbortSignal.any([AbortSignal.timeout(this.o.timeoutMs), this.abort.signal]),
        });
        await res.arrayBuffer().catch(() => undefined);
        if (res.ok) return;
        const message = `webhook answered ${res.status}`;
        if (res.status !== 429 && res.status < 500) throw new PermanentWebhookError(message);
        throw new Error(message);
      } catch (err) {
        if (err instanceof PermanentWebhookError || attempt >= this.o.maxAttempts || this.abort.signal.aborted) throw err;
        this.counters.retries++;
        const delay = Math.min(this.o.baseDelayMs * 2 ** (attempt - 1), this.o.maxDelayMs);
        await new Promise((r) => setTimeout(r, delay / 2 + Math.random() * (delay / 2)));
      }
    }
  }
}
