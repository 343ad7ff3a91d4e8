import { WaitingChildrenError, Worker, type Job, type ConnectionOptions, type WorkerOptions } from "bullmq";
import type { Span } from "@opentelemetry/api";
import { withProcessSpan, type Carrier, type Logger } from "@tracelane/tracing";
import { isFinalAttempt } from "./final-attempt.js";

export interface WorkerMetrics {
  completed: number;
  failed: number;
  stalled: number;
  active: number;
}

/** How one job attempt ended: completed, failed for good, failed and will be retried, or stalled (lock lost). */
export interface AttemptEnd {
  outcome: "completed" | "failed" | "retried" | "stalled";
  /** From BullMQ's processedOn (the attempt's start) to its end; absent for stalled attempts. */
  durationMs?: number;
  error?: Error;
}

export interface RegisterWorkerOptions<T, R> {
  queueName: string;
  /** The queue's BullMQ prefix with its hash tag (StageQueues.prefixOf). */
  prefix: string;
  connection: ConnectionOptions;
  concurrency: number;
  logger: Logger;
  /** `token` is the job's lock token (for `job.moveToDelayed`). */
  processor: (job: Job<T>, span: Span, token?: string) => Promise<R>;
  /** Called when a job has failed for good (no attempts left, unrecoverable, or stalled too often). */
  onFinalFailure?: (job: Job<T>, err: Error) => Promise<void>;
  /** Called as each attempt ends (metrics); must not throw. */
  onAttemptEnd?: (end: AttemptEnd) => void;
  workerOptions?: Partial<WorkerOptions>;
}

export interface RegisteredWorker {
  worker: Worker;
  metrics: WorkerMetrics;
  /** Stop taking jobs and wait for the active ones; safe to call twice. */
  close(): Promise<void>;
}

/**
 * The one place a BullMQ worker is created: every attempt runs in a CONSUMER
 * span continuing the producer's trace, failures are logged once (here, in
 * the `failed` listener), and close() lets in-flight jobs finish.
 */
export function registerWorker<T extends { trace?: Carrier; enqueuedAt?: number }, R>(opts: RegisterWorkerOptions<T, R>): RegisteredWorker {
  const metrics: WorkerMetrics = { completed: 0, failed: 0, stalled: 0, active: 0 };
  const { logger } = opts;

  const worker = new Worker<T, R>(
    opts.queueName,
    async (job, token) => {
      metrics.active++;
      try {
        return await withProcessSpan(
          {
            queue: opts.queueName,
            messageId: job.id,
            // attemptsStarted counts stalled restarts too, so each delivery has its own number.
            attempt: Math.max(job.attemptsStarted, job.attemptsMade + 1),
            publishedAt: job.data?.enqueuedAt ?? job.timestamp,
            carrier: job.data?.trace,
            // A fan-out parent parking until its claim jobs are done is not a failure.
            handOff: (err) => (err instanceof WaitingChildrenError ? "waiting_for_children" : undefined),
          },
          (span) => opts.processor(job, span, token),
        );
      } finally {
        metrics.active--;
      }
    },
    {
      connection: opts.connection,
      prefix: opts.prefix,
      concurrency: opts.concurrency,
      // A job whose worker was killed is retried (as a stalled job) up to twice before it fails.
      maxStalledCount: 2,
      ...opts.workerOptions,
    },
  );

  const durationOf = (job: Job) => (job.processedOn ? Math.max(0, (job.finishedOn ?? Date.now()) - job.processedOn) : undefined);
  const attemptEnded = (end: AttemptEnd) => {
    try {
      opts.onAttemptEnd?.(end);
    } catch (err) {
      logger.error({ err, queue: opts.queueName }, "recording a job attempt's end failed");
    }
  };

  worker.on("completed", (job) => {
    metrics.completed++;
    const durationMs = durationOf(job);
    attemptEnded({ outcome: "completed", ...(durationMs !== undefined ? { durationMs } : {}) });
  });
  worker.on("failed", (job, err) => {
    metrics.failed++;
    if (!job) return;
    const attempts = job.opts.attempts ?? 1;
    // bullmq has already counted this attempt in attemptsMade; the rule takes the attempts before it.
    const final = isFinalAttempt(err, job.attemptsMade - 1, attempts);
    logger.warn(
      {
        jobId: job.id,
        queue: opts.queueName,
        attemptsMade: job.attemptsMade,
        attempts,
        final,
        err: { name: err.name, message: err.message },
      },
      final ? "job failed" : "job attempt failed, will retry",
    );
    const durationMs = durationOf(job);
    attemptEnded({ outcome: final ? "failed" : "retried", error: err, ...(durationMs !== undefined ? { durationMs } : {}) });
    if (final && opts.onFinalFailure) {
      opts.onFinalFailure(job, err).catch((e: unknown) => logger.error({ err: e, jobId: job.id }, "recording final failure failed"));
    }
  });
  worker.on("stalled", (jobId) => {
    metrics.stalled++;
    attemptEnded({ outcome: "stalled" });
    logger.warn({ jobId, queue: opts.queueName }, "job stalled; it will be retried by a live worker");
  });
  worker.on("error", (err) => {
    logger.error({ err: { name: err.name, message: err.message }, queue: opts.queueName }, "worker error");
  });

  let closing: Promise<void> | undefined;
  return {
    worker,
    metrics,
    close: () => (closing ??= worker.close()),
  };
}
