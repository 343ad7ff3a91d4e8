import { TraceFlags, type Context } from "@opentelemetry/api";
import { ExportResultCode, type ExportResult } from "@opentelemetry/core";
import { BatchSpanProcessor, type ReadableSpan, type Span, type SpanExporter, type SpanProcessor } from "@opentelemetry/sdk-trace-base";
import type { BatchSettings } from "./tracing-env.js";

/** What happened to the spans handed to one destination. */
export interface ExportStats {
  /** Spans the exporter accepted. */
  exportedSpans: number;
  /** Spans lost: queue full, failed export, or ended after shutdown. */
  droppedSpans: number;
  /** Export calls that reported FAILED. */
  failedExports: number;
}

/**
 * A BatchSpanProcessor that counts what the SDK's one loses silently.
 *
 * BatchSpanProcessor drops a span without a trace when its buffer holds
 * `maxQueueSize` spans, and keeps that buffer private. Rather than subclass and
 * read private fields (which a patch release may rename), this wraps it and
 * mirrors the buffer length from the two public hand-offs: +1 per sampled span
 * given to `onEnd`, -n per batch the processor passes to the exporter. The
 * processor moves spans from its buffer to `exporter.export` synchronously, so
 * the mirror is exact and a span is counted as dropped exactly when the
 * processor discards it.
 */
export class CountedBatchSpanProcessor implements SpanProcessor {
  private readonly counts: ExportStats = { exportedSpans: 0, droppedSpans: 0, failedExports: 0 };
  private readonly inner: BatchSpanProcessor;
  private readonly exporter: CountingExporter;
  private readonly maxQueueSize: number;
  private queued = 0;
  private shuttingDown = false;
  private shutdownPromise: Promise<void> | undefined;

  constructor(exporter: SpanExporter, settings: BatchSettings) {
    this.maxQueueSize = settings.maxQueueSize;
    this.exporter = new CountingExporter(exporter, {
      handedOff: (n) => {
        this.queued -= n;
      },
      settled: (n, result) => {
        if (result.code === ExportResultCode.SUCCESS) {
          this.counts.exportedSpans += n;
        } else {
          this.counts.failedExports += 1;
          this.counts.droppedSpans += n;
        }
      },
    });
    // Every field set explicitly: the sdk-trace-base shim would otherwise read OTEL_BSP_* from
    // process.env, bypassing the validated env that startTracing was given.
    this.inner = new BatchSpanProcessor(this.exporter, { ...settings });
  }

  stats(): ExportStats {
    return { ...this.counts };
  }

  onStart(span: Span, parentContext: Context): void {
    this.inner.onStart(span, parentContext);
  }

  onEnd(span: ReadableSpan): void {
    // Unsampled spans are never exported, so they are neither queued nor dropped (as in BatchSpanProcessor).
    if ((span.spanContext().traceFlags & TraceFlags.SAMPLED) === 0) return;
    if (this.shuttingDown) {
      this.counts.droppedSpans += 1;
      return;
    }
    if (this.queued >= this.maxQueueSize) this.counts.droppedSpans += 1;
    else this.queued += 1;
    this.inner.onEnd(span);
  }

  /** Export everything queued; resolves even when an export fails (failures are in stats()). */
  async forceFlush(): Promise<void> {
    await this.inner.forceFlush().catch(() => undefined);
    await this.exporter.forceFlush();
  }

  /** Flush, then release the exporter's connection; idempotent. */
  shutdown(): Promise<void> {
    this.shuttingDown = true;
    this.shutdownPromise ??= (async () => {
      // BatchSpanProcessor skips exporter.shutdown() when its final flush fails; that would leave a gRPC
      // channel or Redis socket holding the process open, so the exporter is shut down here regardless.
      await this.inner.shutdown().catch(() => undefined);
      await this.exporter.shutdown();
    })();
    return this.shutdownPromise;
  }
}

interface CountingHooks {
  handedOff(spans: number): void;
  settled(spans: number, result: ExportResult): void;
}

/** Reports hand-offs and results of the wrapped exporter; shutdown runs once. */
class CountingExporter implements SpanExporter {
  private shutdownPromise: Promise<void> | undefined;

  constructor(
    private readonly delegate: SpanExporter,
    private readonly hooks: CountingHooks,
  ) {}

  export(spans: ReadableSpan[], resultCallback: (result: ExportResult) => void): void {
    this.hooks.handedOff(spans.length);
    let settled = false;
    try {
      this.delegate.export(spans, (result) => {
        if (settled) return;
        settled = true;
        this.hooks.settled(spans.length, result);
        resultCallback(result);
      });
    } catch (err) {
      if (settled) throw err;
      settled = true;
      const result: ExportResult = { code: ExportResultCode.FAILED, error: err instanceof Error ? err : new Error(String(err)) };
      this.hooks.settled(spans.length, result);
      resultCallback(result);
    }
  }

  async forceFlush(): Promise<void> {
    await this.delegate.forceFlush?.();
  }

  shutdown(): Promise<void> {
    this.shutdownPromise ??= this.delegate.shutdown().catch(() => undefined);
    return this.shutdownPromise;
  }
}
