import type { RedisClient } from "@tracelane/runtime";
import type { Logger } from "@tracelane/tracing";
import { sweepExpired } from "@tracelane/trace-store";
import type { CollectorStats } from "./stats.js";

const PER_ROUND = 1_000;

/**
 * Periodic removal of expired traces' index entries (the per-trace keys expire by TTL on their
 * own; the zset indexes have no TTL), in every partition. Readers prune lazily too; this bounds
 * index growth when nobody reads.
 */
export class Sweeper {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<number> | undefined;

  constructor(
    private readonly redis: RedisClient,
    private readonly prefix: string,
    private readonly intervalMs: number,
    private readonly stats?: CollectorStats,
    private readonly logger?: Pick<Logger, "warn">,
  ) {}

  start(): void {
    this.timer ??= setInterval(() => {
      if (!this.running) void this.sweep().catch((err) => this.logger?.warn({ err }, "expiry sweep failed"));
    }, this.intervalMs);
    this.timer.unref();
  }

  /**
   * Prune every trace whose expiry is due (in rounds of up to 1,000 per partition; a round that prunes fewer than
   * 1,000 in all left no partition with more due). Returns how many were pruned.
   */
  sweep(): Promise<number> {
    this.running ??= (async () => {
      let total = 0;
      try {
        for (let round = 0; round < 100; round++) {
          const n = await sweepExpired(this.redis, { prefix: this.prefix, limit: PER_ROUND });
          total += n;
          if (n < PER_ROUND) break;
        }
        if (this.stats) this.stats.sweptTraces += total;
        return total;
      } finally {
        this.running = undefined;
      }
    })();
    return this.running;
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.running?.catch(() => undefined);
  }
}
