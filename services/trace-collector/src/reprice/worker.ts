import { UnrecoverableError, Worker } from "bullmq";
import { PriceTable } from "@tracelane/pricing";
import { REPRICE_QUEUE, RepriceJobSchema, repriceQueuePrefix, type RepriceJob, type RepriceProgress } from "@tracelane/queue-contract";
import type { RedisClient } from "@tracelane/runtime";
import { withProcessSpan } from "@tracelane/tracing/messaging";
import type { Repricer } from "./repricer.js";

export interface RepriceWorkerOptions {
  /** A worker connection (maxRetriesPerRequest: null); BullMQ duplicates it for its blocking reads. */
  connection: RedisClient;
  /** TRACELANE_QUEUE_PREFIX. */
  queuePrefix: string;
  repricer: Repricer;
  logger?: { warn(obj: object, msg?: string): void };
}

/**
 * Consume the reprice queue (one job at a time per collector): each job inside its CONSUMER span, continuing the
 * api request's trace; progress after every step of traces. A job that cannot succeed (a payload or table the api
 * should have refused) fails for good.
 */
export function startRepriceWorker(o: RepriceWorkerOptions): { close(): Promise<void> } {
  let stopping = false;
  const worker = new Worker<RepriceJob, RepriceProgress>(
    REPRICE_QUEUE,
    async (job) => {
      const parsed = RepriceJobSchema.safeParse(job.data);
      if (!parsed.success) throw new UnrecoverableError(`reprice job ${job.id}: ${parsed.error.issues[0]?.message ?? "invalid payload"}`);
      const data = parsed.data;
      return withProcessSpan(
        { queue: REPRICE_QUEUE, messageId: job.id, attempt: job.attemptsMade + 1, publishedAt: data.requestedAt, carrier: data.trace },
        async () => {
          let prices: PriceTable | undefined;
          try {
            prices = data.priceTable ? PriceTable.parse(data.priceTable, "priceTable") : undefined;
          } catch (err) {
            throw new UnrecoverableError((err as Error).message);
          }
          return o.repricer.run(
            { since: data.since, until: data.until, ...(prices ? { prices } : {}) },
            (p) => job.updateProgress({ ...p }),
            () => stopping,
            // A retried or stalled job's last report: it goes on from there (progress is 0 on a job's first run).
            typeof job.progress === "object" && job.progress !== null && "cursor" in job.progress
              ? (job.progress as RepriceProgress)
              : undefined,
          );
        },
      );
    },
    { connection: o.connection, prefix: repriceQueuePrefix(o.queuePrefix), concurrency: 1 },
  );
  // Recorded on the job (failedReason, shown by GET /v1/admin/reprice/:id) and on its span; logged here once.
  worker.on("failed", (job, err) => o.logger?.warn({ err, jobId: job?.id }, "reprice failed"));
  worker.on("error", (err) => o.logger?.warn({ err }, "reprice worker error"));
  return {
    /** Stop taking jobs; a running reprice stops after its current step (and is retried), then the worker closes. */
    close: () => {
      stopping = true;
      return worker.close();
    },
  };
}
