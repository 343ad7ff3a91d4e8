import { ExportResultCode, type ExportResult } from "@opentelemetry/core";
import { JsonTraceSerializer } from "@opentelemetry/otlp-transformer";
import type { ReadableSpan, SpanExporter } from "@opentelemetry/sdk-trace-base";
import { batch, createRedis } from "@tracelane/runtime";
import type { RedisClient, RedisTarget } from "@tracelane/runtime";
import { SPAN_STREAM_DEFAULT, SPAN_STREAM_SHARDS_DEFAULT, spanStreamShardIndex, spanStreamShards } from "./span-stream.js";

export interface RedisStreamSpanExporterOptions {
  /** Open (and own) a dedicated connection to this URL (with `clusterNodes`: to that cluster)... */
  redisUrl?: string;
  /** ...seeds of a Redis Cluster, as REDIS_CLUSTER_NODES; the URL then lends credentials and TLS only... */
  clusterNodes?: RedisTarget["clusterNodes"];
  /** ...or write through an existing connection, left open on shutdown. */
  redis?: RedisClient;
  /** Base name of the stream; default SPAN_STREAM_DEFAULT. The entries go to its shards (spanStreamShards). */
  stream?: string;
  /** Shards the stream is split into by trace id; default SPAN_STREAM_SHARDS_DEFAULT. The collector reads as many. */
  shards?: number;
  /** Approximate cap (`MAXLEN ~`) of each shard, so an absent collector cannot fill Redis; default 1,000,000 entries. */
  maxLen?: number;
  /** Attempts per batch before it is reported FAILED; default 4. */
  maxAttempts?: number;
  /** First retry delay, doubled per attempt; default 100 ms (100, 200, 400). */
  retryDelayMs?: number;
}

/** One shard's part of a batch, serialized once and kept across retries. */
interface ShardEntry {
  key: string;
  otlp: Buffer;
}

/**
 * The durable span path to the trace-collector. The stream is split into shards by trace id
 * (spanStreamShards): each exported batch becomes ONE entry per shard it touches,
 * `XADD <shard> MAXLEN ~ <cap> * otlp <OTLP/JSON ExportTraceServiceRequest>`, so every span of a trace
 * lands in one shard, and on a cluster the shards (one hash tag each) spread over the masters.
 * Unlike an in-process hand-off, entries survive a collector restart; unlike
 * OTLP/gRPC to Jaeger, the collector reads at its own pace.
 *
 * Delivery is at-least-once: a retry after a reply lost in a connection drop
 * appends the entry again, so the collector keys spans by (trace id, span id).
 * A retry sends only the shards not written yet. A batch of which some shard could not be
 * written is reported FAILED as a whole: its spans count as dropped, though those of the
 * shards written do reach the collector (drops over- rather than under-reported).
 */
export class RedisStreamSpanExporter implements SpanExporter {
  readonly stream: string;
  /** The shard keys, in shard order. */
  readonly shardKeys: readonly string[];
  private readonly redis: RedisClient;
  private readonly ownsConnection: boolean;
  private readonly maxLen: string;
  private readonly maxAttempts: number;
  private readonly retryDelayMs: number;
  private readonly pending = new Set<Promise<void>>();
  private shutdownPromise: Promise<void> | undefined;

  constructor(opts: RedisStreamSpanExporterOptions) {
    if (opts.redis) {
      this.redis = opts.redis;
      this.ownsConnection = false;
    } else if (opts.redisUrl) {
      // Fail-fast "producer" connection: with no offline queue a command errors at once while Redis is
      // down (a Cluster's gives up after a few retries through a failover), so the retry loop below,
      // not ioredis, decides how long a batch may wait.
      this.redis = createRedis({ url: opts.redisUrl, clusterNodes: opts.clusterNodes }, "producer", {
        connectionName: "tracelane-span-exporter",
      });
      this.ownsConnection = true;
    } else {
      throw new Error("RedisStreamSpanExporter needs `redis` or `redisUrl`");
    }
    this.stream = opts.stream ?? SPAN_STREAM_DEFAULT;
    this.shardKeys = spanStreamShards(this.stream, opts.shards ?? SPAN_STREAM_SHARDS_DEFAULT);
    this.maxLen = String(opts.maxLen ?? 1_000_000);
    this.maxAttempts = Math.max(1, opts.maxAttempts ?? 4);
    this.retryDelayMs = opts.retryDelayMs ?? 100;
  }

  export(spans: ReadableSpan[], resultCallback: (result: ExportResult) => void): void {
    if (this.shutdownPromise) {
      resultCallback({ code: ExportResultCode.FAILED, error: new Error("RedisStreamSpanExporter is shut down") });
      return;
    }
    const done = this.append(spans).then(
      () => resultCallback({ code: ExportResultCode.SUCCESS }),
      (error: unknown) =>
        resultCallback({ code: ExportResultCode.FAILED, error: error instanceof Error ? error : new Error(String(error)) }),
    );
    this.pending.add(done);
    void done.finally(() => this.pending.delete(done));
  }

  async forceFlush(): Promise<void> {
    await Promise.allSettled([...this.pending]);
  }

  shutdown(): Promise<void> {
    this.shutdownPromise ??= (async () => {
      await this.forceFlush();
      if (this.ownsConnection) await this.redis.quit().catch(() => this.redis.disconnect());
    })();
    return this.shutdownPromise;
  }

  private async append(spans: ReadableSpan[]): Promise<void> {
    let unsent = this.entriesByShard(spans);
    let lastError: unknown;
    for (let attempt = 1; attempt <= this.maxAttempts; attempt++) {
      try {
        // One round trip for every shard on one Redis (a pipeline); per node on a Cluster (see batch).
        const replies = await batch(this.redis, (commands) => {
          for (const e of unsent) commands.xadd(e.key, "MAXLEN", "~", this.maxLen, "*", "otlp", e.otlp);
        });
        const failed: ShardEntry[] = [];
        unsent.forEach((entry, i) => {
          const [error] = replies[i] ?? [new Error("no reply to XADD")];
          if (!error) return;
          failed.push(entry);
          lastError = error;
        });
        if (failed.length === 0) return;
        unsent = failed;
      } catch (err) {
        lastError = err; // the whole batch failed (no connection): every unsent shard stays unsent
      }
      if (attempt < this.maxAttempts) await sleep(this.retryDelayMs * 2 ** (attempt - 1));
    }
    throw lastError;
  }

  /** The batch split by shard, one OTLP/JSON request per shard touched. */
  private entriesByShard(spans: ReadableSpan[]): ShardEntry[] {
    const byShard = new Map<number, ReadableSpan[]>();
    for (const span of spans) {
      const k = spanStreamShardIndex(span.spanContext().traceId, this.shardKeys.length);
      const list = byShard.get(k);
      if (list) list.push(span);
      else byShard.set(k, [span]);
    }
    return [...byShard].map(([k, list]) => {
      const body = JsonTraceSerializer.serializeRequest(list);
      if (!body) throw new Error("OTLP/JSON serialization produced no request");
      // The serializer yields UTF-8 bytes; a Buffer view hands them to Redis without a decode/re-encode.
      return { key: this.shardKeys[k]!, otlp: Buffer.from(body.buffer, body.byteOffset, body.byteLength) };
    });
  }
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
