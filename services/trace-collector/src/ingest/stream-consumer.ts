import type { RedisClient } from "@tracelane/runtime";
import type { Logger } from "@tracelane/tracing";
import { CollectorStats } from "../stats.js";

export const CONSUMER_GROUP = "trace-collector";

export interface StreamEntry {
  id: string;
  fields: Record<string, string>;
}

export interface StreamConsumerOptions {
  /** A connection for this consumer alone: XREADGROUP BLOCK holds it. */
  redis: RedisClient;
  stream: string;
  group?: string;
  consumer: string;
  batchSize: number;
  blockMs: number;
  /** Pending entries idle longer than this (a crashed replica's) are claimed and finished here. */
  claimIdleMs: number;
  /** How often to look for such entries. */
  claimIntervalMs: number;
  /** XDEL entries once acknowledged, so the stream does not grow without bound. */
  deleteAcked: boolean;
  /**
   * Assemble a batch. Throwing leaves every entry of the batch pending (it will be retried via
   * XAUTOCLAIM); entries that can never succeed must be handled (skipped) inside, not thrown.
   */
  handle: (entries: StreamEntry[]) => Promise<void>;
  logger?: Pick<Logger, "info" | "warn" | "error">;
  stats?: CollectorStats;
}

type RawEntry = [string, string[]] | null;

function toEntries(raw: readonly RawEntry[]): StreamEntry[] {
  const out: StreamEntry[] = [];
  for (const e of raw) {
    if (!e) continue; // deleted while pending (XAUTOCLAIM reports and drops those)
    const [id, flat] = e;
    const fields: Record<string, string> = {};
    for (let i = 0; i + 1 < flat.length; i += 2) fields[flat[i]!] = flat[i + 1]!;
    out.push({ id, fields });
  }
  return out;
}

/**
 * Reads the span stream as consumer group "trace-collector": XREADGROUP for new entries,
 * XAUTOCLAIM for entries another (crashed) consumer left pending, XACK only after `handle`
 * assembled the batch. At-least-once; assembly is idempotent by span id.
 */
export class StreamConsumer {
  readonly group: string;
  private stopping = false;
  private loop: Promise<void> | undefined;
  private claimCursor = "0-0";
  private lastClaimAt = 0;
  private readonly stats: CollectorStats;

  constructor(private readonly opts: StreamConsumerOptions) {
    this.group = opts.group ?? CONSUMER_GROUP;
    this.stats = opts.stats ?? new CollectorStats();
  }

  /** Create the group (reading from the start of the stream, so spans written before the first start count). */
  async ensureGroup(): Promise<void> {
    try {
      await this.opts.redis.xgroup("CREATE", this.opts.stream, this.group, "0", "MKSTREAM");
    } catch (err) {
      if (!(err instanceof Error && err.message.includes("BUSYGROUP"))) throw err;
    }
  }

  /** Claim and process one batch of entries idle for claimIdleMs. Returns the number processed. */
  async claimOnce(): Promise<number> {
    const { redis, stream, consumer, claimIdleMs, batchSize } = this.opts;
    const reply = (await redis.xautoclaim(stream, this.group, consumer, claimIdleMs, this.claimCursor, "COUNT", batchSize)) as [
      string,
      RawEntry[],
      string[]?,
    ];
    this.claimCursor = reply[0];
    const entries = toEntries(reply[1]);
    if (entries.length === 0) return 0;
    this.stats.entriesClaimed += entries.length;
    this.opts.logger?.warn({ count: entries.length, first: entries[0]!.id }, "claimed entries left pending by another consumer");
    await this.process(entries);
    return entries.length;
  }

  /** Read and process one batch of new entries, blocking up to `blockMs`. Returns the number processed. */
  async readOnce(blockMs = this.opts.blockMs): Promise<number> {
    const { redis, stream, consumer, batchSize } = this.opts;
    const args: (string | number)[] = ["GROUP", this.group, consumer, "COUNT", batchSize];
    if (blockMs > 0) args.push("BLOCK", blockMs);
    args.push("STREAMS", stream, ">");
    const reply = (await redis.call("XREADGROUP", ...args)) as [string, RawEntry[]][] | null;
    const entries = reply ? toEntries(reply[0]![1]) : [];
    if (entries.length === 0) return 0;
    this.stats.entriesRead += entries.length;
    await this.process(entries);
    return entries.length;
  }

  private async process(entries: StreamEntry[]): Promise<void> {
    await this.opts.handle(entries);
    const ids = entries.map((e) => e.id);
    const p = this.opts.redis.pipeline().xack(this.opts.stream, this.group, ...ids);
    if (this.opts.deleteAcked) p.xdel(this.opts.stream, ...ids);
    const replies = (await p.exec()) ?? [];
    const failed = replies.find(([err]) => err);
    if (failed) throw failed[0];
    this.stats.entriesAcked += entries.length;
    this.stats.batches++;
    this.stats.lastBatchAt = Date.now();
  }

  /** Drain: claim stale entries when due, then read new ones, until nothing is left (tests, bench). */
  async drain(): Promise<number> {
    let total = 0;
    for (;;) {
      const n = (await this.claimDue()) + (await this.readOnce(0));
      total += n;
      if (n === 0) return total;
    }
  }

  private async claimDue(): Promise<number> {
    if (Date.now() - this.lastClaimAt < this.opts.claimIntervalMs && this.claimCursor === "0-0") return 0;
    this.lastClaimAt = Date.now();
    return this.claimOnce();
  }

  /** Run until stop(): claim when due, read with BLOCK, back off on errors. */
  start(): void {
    if (this.loop) return;
    this.stopping = false;
    this.loop = (async () => {
      let failures = 0;
      while (!this.stopping) {
        try {
          await this.claimDue();
          if (this.stopping) break;
          await this.readOnce();
          failures = 0;
        } catch (err) {
          if (this.stopping) break;
          failures++;
          this.stats.batchFailures++;
          this.opts.logger?.error({ err, failures }, "span batch failed; entries stay pending and will be retried");
          await new Promise((r) => setTimeout(r, Math.min(100 * 2 ** Math.min(failures, 6), 5_000)));
        }
      }
    })();
  }

  /**
   * Stop after the current batch (a blocked read returns within blockMs). If the loop is still
   * stuck after `timeoutMs` (Redis unreachable: commands wait for a reconnect), the consumer's
   * connection is cut; an unacknowledged batch stays pending and another consumer claims it.
   */
  async stop(timeoutMs = 5_000): Promise<void> {
    this.stopping = true;
    const loop = this.loop;
    if (!loop) return;
    const settled = (ms: number) => {
      let timer: NodeJS.Timeout | undefined;
      return Promise.race([
        loop.then(() => true),
        new Promise<boolean>((resolve) => {
          timer = setTimeout(() => resolve(false), ms);
        }),
      ]).finally(() => clearTimeout(timer));
    };
    if (!(await settled(timeoutMs))) {
      this.opts.logger?.warn({ timeoutMs }, "consumer did not stop in time (Redis unreachable?); closing its connection");
      // ioredis may never settle a command queued while reconnecting, so the loop is not awaited further.
      this.opts.redis.disconnect();
      await settled(500);
    }
    this.loop = undefined;
  }
}

/** Consumer-group lag for /stats (Redis >= 7: `lag` = entries not yet delivered to the group). */
export async function streamLag(redis: RedisClient, stream: string, group = CONSUMER_GROUP) {
  const [length, groups] = await Promise.all([
    redis.xlen(stream),
    (redis.call("XINFO", "GROUPS", stream) as Promise<unknown[][]>).catch(() => [] as unknown[][]),
  ]);
  for (const g of groups) {
    const info: Record<string, unknown> = {};
    for (let i = 0; i + 1 < g.length; i += 2) info[String(g[i])] = g[i + 1];
    if (info.name === group) {
      return {
        stream,
        length,
        pending: Number(info.pending ?? 0),
        lag: info.lag === null || info.lag === undefined ? null : Number(info.lag),
        lastDeliveredId: String(info["last-delivered-id"] ?? ""),
      };
    }
  }
  return { stream, length, pending: 0, lag: null, lastDeliveredId: "" };
}
