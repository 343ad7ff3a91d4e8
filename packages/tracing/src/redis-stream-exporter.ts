import { ExportResultCode, type ExportResult } from "@opentelemetry/core";
import { JsonTraceSerializer } from "@opentelemetry/otlp-transformer";
import type { ReadableSpan, SpanExporter } from "@opentelemetry/sdk-trace-base";
import { createRedis } from "@tracelane/runtime";
import type { RedisClient } from "@tracelane/runtime";
import { SPAN_STREAM_DEFAULT } from "./tracing-env.js";

export interface RedisStreamSpanExporterOptions {
  /** Open (and own) a dedicated connection to this URL... */
  redisUrl?: string;
  /** ...or write through an existing connection, left open on shutdown. */
  redis?: RedisClient;
  /** Stream key; default SPAN_STREAM_DEFAULT. */
  stream?: string;
  /** Approximate cap (`MAXLEN ~`) so an absent collector cannot fill Redis; default 1,000,000 entries. */
  maxLen?: number;
  /** Attempts per batch before it is reported FAILED; default 4. */
  maxAttempts?: number;
  /** First retry delay, doubled per attempt; default 100 ms (100, 200, 400). */
  retryDelayMs?: number;
}

/**
 * The durable span path to the trace-collector: each exported batch becomes ONE
 * stream entry `XADD <stream> MAXLEN ~ <cap> * otlp <OTLP/JSON ExportTraceServiceRequest>`.
 * Unlike an in-process hand-off, entries survive a collector restart; unlike
 * OTLP/gRPC to Jaeger, the collector reads at its own pace.
 *
 * Delivery is at-least-once: a retry after a reply lost in a connection drop
 * appends the batch again, so the collector keys spans by (trace id, span id).
 */
export class RedisStreamSpanExporter implements SpanExporter {
  readonly stream: string;
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
      // down, so the retry loop below (not ioredis) decides how long a batch may wait.
      this.redis = createRedis(opts.redisUrl, "producer", { connectionName: "tracelane-span-exporter" });
      this.ownsConnection = true;
    } else {
      throw new Error("RedisStreamSpanExporter needs `redis` or `redisUrl`");
    }
    this.stream = opts.stream ?? SPAN_STREAM_DEFAULT;
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
    const body = JsonTraceSerializer.serializeRequest(spans);
    if (!body) throw new Error("OTLP/JSON serialization produced no request");
    // The serializer yields UTF-8 bytes; a Buffer view hands them to Redis without a decode/re-encode.
    const otlpJson = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
    let lastError: unknown;
    for (let attempt = 1; attempt <= this.maxAttempts; attempt++) {
      try {
        await this.redis.xadd(this.stream, "MAXLEN", "~", this.maxLen, "*", "otlp", otlpJson);
        return;
      } catch (err) {
        lastError = err;
        if (attempt < this.maxAttempts) await sleep(this.retryDelayMs * 2 ** (attempt - 1));
      }
    }
    throw lastError;
  }
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
