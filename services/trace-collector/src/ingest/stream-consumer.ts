import { batch, closeRedis, type RedisClient } from "@tracelane/runtime";
import { SPAN_STREAM_SHARDS_DEFAULT, spanStreamShards, type Logger } from "@tracelane/tracing";
import { CollectorStats } from "../stats.js";

export const CONSUMER_GROUP = "trace-collector";

export interface StreamEntry {
  id: string;
  fields: Record<string, string>;
}

export interface StreamConsumerOptions {
  /**
   * The consumer's connection: creating the groups and drain() use it. Each shard's read loop (start) blocks in
   * XREADGROUP on a duplicate of it of its own, opened by start() and closed by stop().
   */
  redis: RedisClient;
  /** Base name of the span stream (TRACELANE_SPAN_STREAM): its shards (spanStreamShards) are read. */
  stream: string;
  /** TRACELANE_SPAN_STREAM_SHARDS, as the exporters write; default SPAN_STREAM_SHARDS_DEFAULT, theirs. */
  shards?: number;
  group?: string;
  consumer: string;
  /** Entries per read, per shard. */
  batchSize: number;
  blockMs: number;
  /** Pending entries idle longer than this (a crashed replica's) are claimed and finished here. */
  claimIdleMs: number;
  /** How often to look for such entries (on each shard). */
  claimIntervalMs: number;
  /** XDEL entries once acknowledged, so the stream does not grow without bound. */
  deleteAcked: boolean;
  /**
   * Assemble a batch (entries of one shard). Throwing leaves every entry of the batch pending (it will be retried
   * via XAUTOCLAIM); entries that can never succeed must be handled (skipped) inside, not thrown. Called for
   * several shards at once, each shard's batches in turn: a trace's spans are all in one shard, so this consumer
   * never handles two batches of one trace at once.
   */
  handle: (entries: StreamEntry[]) => Promise<void>;
  logger?: Pick<Logger, "info" | "warn" | "error">;
  stats?: CollectorStats;
}

/** One shard's claim state: XAUTOCLAIM walks each shard's pending entries with a cursor of its own. */
interface Shard {
  key: string;
  claimCursor: string;
  lastClaimAt: number;
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
 * Reads the span stream's shards as consumer group "trace-collector": XREADGROUP for new entries,
 * XAUTOCLAIM for entries another (crashed) consumer left pending, XACK only after `handle`
 * assembled the batch; all per shard. Replicas share every shard through the group, and each
 * claims the others' stale entries shard by shard. At-least-once; assembly is idempotent by span id.
 *
 * start() runs one loop per shard, each on its own connection: a blocking XREADGROUP holds its
 * connection, and a Cluster refuses one XREADGROUP over keys of several slots.
 */
export class StreamConsumer {
  readonly group: string;
  /** The keys read, in shard order. */
  readonly shardKeys: readonly string[];
  private readonly shards: Shard[];
  private stopping = false;
  private loops: Promise<void>[] | undefined;
  private loopConnections: RedisClient[] = [];
  private readonly stats: CollectorStats;

  constructor(private readonly opts: StreamConsumerOptions) {
    this.group = opts.group ?? CONSUMER_GROUP;
    this.stats = opts.stats ?? new CollectorStats();
    this.shardKeys = spanStreamShards(opts.stream, opts.shards ?? SPAN_STREAM_SHARDS_DEFAULT);
    this.shards = this.shardKeys.map((key) => ({ key, claimCursor: "0-0", lastClaimAt: 0 }));
  }

  /** Create the group on every shard (reading from the start, so spans written before the first start count). */
  async ensureGroup(): Promise<void> {
    await oneAtATime(this.shards, async ({ key }) => {
      try {
        await this.opts.redis.xgroup("CREATE", key, this.group, "0", "MKSTREAM");
      } catch (err) {
        if (!(err instanceof Error && err.message.includes("BUSYGROUP"))) throw err;
      }
    });
  }

  /** Claim and process one batch of entries idle for claimIdleMs, on every shard. Returns the number processed. */
  claimOnce(): Promise<number> {
    return this.eachShard((shard) => this.claimShard(shard, this.opts.redis));
  }

  /** Read and process one batch of new entries on every shard, without blocking. Returns the number processed. */
  readOnce(): Promise<number> {
    return this.eachShard((shard) => this.readShard(shard, this.opts.redis, 0));
  }

  /** Drain: claim stale entries when due, then read new ones, until no shard has any left (tests, bench). */
  async drain(): Promise<number> {
    let total = 0;
    for (;;) {
      const n = await this.eachShard(
        async (shard) => (await this.claimDue(shard, this.opts.redis)) + (await this.readShard(shard, this.opts.redis, 0)),
      );
      total += n;
      if (n === 0) return total;
    }
  }

  /** `work` on every shard at once; every shard runs to its end, then the first failure is thrown. */
  private async eachShard(work: (shard: Shard) => Promise<number>): Promise<number> {
    const settled = await Promise.allSettled(this.shards.map(work));
    const failed = settled.find((r): r is PromiseRejectedResult => r.status === "rejected");
    if (failed) throw failed.reason;
    return settled.reduce((sum, r) => sum + (r.status === "fulfilled" ? r.value : 0), 0);
  }

  private async claimShard(shard: Shard, redis: RedisClient): Promise<number> {
    const { consumer, claimIdleMs, batchSize } = this.opts;
    const reply = (await redis.xautoclaim(shard.key, this.group, consumer, claimIdleMs, shard.claimCursor, "COUNT", batchSize)) as [
      string,
      RawEntry[],
      string[]?,
    ];
    shard.claimCursor = reply[0];
    const entries = toEntries(reply[1]);
    if (entries.length === 0) return 0;
    this.stats.entriesClaimed += entries.length;
    this.opts.logger?.warn(
      { shard: shard.key, count: entries.length, first: entries[0]!.id },
      "claimed entries left pending by another consumer",
    );
    await this.process(shard, redis, entries);
    return entries.length;
  }

  private async readShard(shard: Shard, redis: RedisClient, blockMs: number): Promise<number> {
    const args: (string | number)[] = ["GROUP", this.group, this.opts.consumer, "COUNT", this.opts.batchSize];
    if (blockMs > 0) args.push("BLOCK", blockMs);
    args.push("STREAMS", shard.key, ">");
    const reply = (await redis.call("XREADGROUP", ...args)) as [string, RawEntry[]][] | null;
    const entries = reply ? toEntries(reply[0]![1]) : [];
    if (entries.length === 0) return 0;
    this.stats.entriesRead += entries.length;
    await this.process(shard, redis, entries);
    return entries.length;
  }

  private async process(shard: Shard, redis: RedisClient, entries: StreamEntry[]): Promise<void> {
    await this.opts.handle(entries);
    const ids = entries.map((e) => e.id);
    const replies = await batch(redis, (commands) => {
      commands.xack(shard.key, this.group, ...ids);
      if (this.opts.deleteAcked) commands.xdel(shard.key, ...ids);
    });
    const failed = replies.find(([err]) => err);
    if (failed) throw failed[0];
    this.stats.entriesAcked += entries.length;
    this.stats.batches++;
    this.stats.lastBatchAt = Date.now();
  }

  private async claimDue(shard: Shard, redis: RedisClient): Promise<number> {
    if (Date.now() - shard.lastClaimAt < this.opts.claimIntervalMs && shard.claimCursor === "0-0") return 0;
    shard.lastClaimAt = Date.now();
    return this.claimShard(shard, redis);
  }

  /** Run until stop(): per shard, on its own connection, claim when due, read with BLOCK, back off on errors. */
  start(): void {
    if (this.loops) return;
    this.stopping = false;
    this.loopConnections = this.shards.map(() => {
      const redis = this.opts.redis.duplicate();
      // A duplicate does not inherit listeners: without one, every failed reconnect is printed as unhandled.
      redis.on("error", () => {});
      return redis;
    });
    this.loops = this.shards.map((shard, i) => this.runShard(shard, this.loopConnections[i]!));
  }

  private async runShard(shard: Shard, redis: RedisClient): Promise<void> {
    let failures = 0;
    while (!this.stopping) {
      try {
        await this.claimDue(shard, redis);
        if (this.stopping) break;
        await this.readShard(shard, redis, this.opts.blockMs);
        failures = 0;
      } catch (err) {
        if (this.stopping) break;
        failures++;
        this.stats.batchFailures++;
        this.opts.logger?.error({ err, failures, shard: shard.key }, "span batch failed; entries stay pending and will be retried");
        await new Promise((r) => setTimeout(r, Math.min(100 * 2 ** Math.min(failures, 6), 5_000)));
      }
    }
  }

  /**
   * Stop after the current batch of every shard (a blocked read returns within blockMs), then close the shard
   * connections. If a loop is still stuck after `timeoutMs` (Redis unreachable: commands wait for a reconnect),
   * the connections are cut; an unacknowledged batch stays pending and another consumer claims it.
   */
  async stop(timeoutMs = 5_000): Promise<void> {
    this.stopping = true;
    const loops = this.loops;
    if (!loops) return;
    const connections = this.loopConnections;
    const all = Promise.all(loops);
    const settled = (ms: number) => {
      let timer: NodeJS.Timeout | undefined;
      return Promise.race([
        all.then(() => true),
        new Promise<boolean>((resolve) => {
          timer = setTimeout(() => resolve(false), ms);
        }),
      ]).finally(() => clearTimeout(timer));
    };
    if (!(await settled(timeoutMs))) {
      this.opts.logger?.warn({ timeoutMs }, "consumer did not stop in time (Redis unreachable?); closing its connections");
      // ioredis may never settle a command queued while reconnecting, so the loops are not awaited further.
      for (const redis of connections) redis.disconnect();
      await settled(500);
    }
    await Promise.all(connections.map((redis) => closeRedis(redis, 500)));
    this.loops = undefined;
    this.loopConnections = [];
  }
}

/**
 * XGROUP and XINFO name their key after a subcommand, where ioredis's auto-pipelining on a Cluster does not look
 * for it: sent in one tick, the shards' commands would share one pipeline to one node, and those of the keys that
 * live elsewhere would fail with MOVED. Sent one at a time, each goes alone and follows its MOVED.
 */
async function oneAtATime<T, R>(items: readonly T[], run: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = [];
  for (const item of items) out.push(await run(item));
  return out;
}

/** One shard's consumer-group lag (Redis >= 7: `lag` = entries not yet delivered to the group). */
async function shardLag(redis: RedisClient, key: string, group: string) {
  const [length, groups] = await Promise.all([
    redis.xlen(key),
    // No such key (no group created yet): no group to report.
    (redis.call("XINFO", "GROUPS", key) as Promise<unknown[][]>).catch(() => [] as unknown[][]),
  ]);
  for (const g of groups) {
    const info: Record<string, unknown> = {};
    for (let i = 0; i + 1 < g.length; i += 2) info[String(g[i])] = g[i + 1];
    if (info.name === group) {
      return {
        key,
        length,
        pending: Number(info.pending ?? 0),
        lag: info.lag === null || info.lag === undefined ? null : Number(info.lag),
        lastDeliveredId: String(info["last-delivered-id"] ?? ""),
      };
    }
  }
  return { key, length, pending: 0, lag: null, lastDeliveredId: "" };
}

/**
 * Consumer-group lag of the span stream for /stats: length, pending and lag summed over the shards (lag null
 * when a shard cannot tell: no group yet, or Redis < 7), and each shard's own under `shards`.
 */
export async function streamLag(redis: RedisClient, stream: string, shards = SPAN_STREAM_SHARDS_DEFAULT, group = CONSUMER_GROUP) {
  const perShard = await oneAtATime(spanStreamShards(stream, shards), (key) => shardLag(redis, key, group));
  const sum = (pick: (s: (typeof perShard)[number]) => number) => perShard.reduce((total, s) => total + pick(s), 0);
  return {
    stream,
    length: sum((s) => s.length),
    pending: sum((s) => s.pending),
    lag: perShard.some((s) => s.lag === null) ? null : sum((s) => s.lag!),
    shards: perShard,
  };
}
