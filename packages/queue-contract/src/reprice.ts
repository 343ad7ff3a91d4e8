import { randomUUID } from "node:crypto";
import type { JobsOptions } from "bullmq";
import { PriceFileSchema } from "@tracelane/pricing";
import { z } from "zod";
import { TraceCarrierSchema } from "./payloads.js";
import { queuePrefix } from "./queues.js";

/**
 * The re-pricing queue (issue 15 §2): the api validates `POST /v1/admin/reprice` and adds one job here; the
 * trace-collector, the only writer of trace data, consumes it and re-prices the stored traces of the window in
 * bounded steps, reporting progress on the job. Its own hash tag (queuePrefix), like every queue.
 */
export const REPRICE_QUEUE = "tracelane-reprice";

/** The BullMQ prefix of the reprice queue under TRACELANE_QUEUE_PREFIX. */
export const repriceQueuePrefix = (prefix: string) => queuePrefix(prefix, REPRICE_QUEUE);

/** A reprice id is its job id: `reprice-<uuid>` (no ':', which BullMQ refuses in custom ids). */
export const RepriceIdSchema = z.string().regex(/^reprice-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
export const newRepriceId = () => `reprice-${randomUUID()}`;

/** The job: the window of trace starts (epoch ms, inclusive) and, optionally, the table to price with. */
export const RepriceJobSchema = z
  .object({
    since: z.number().int().nonnegative(),
    until: z.number().int().nonnegative(),
    /** An inline price table (the pricing package's file schema); absent: the collector's own table. */
    priceTable: PriceFileSchema.optional(),
    trace: TraceCarrierSchema.default({}),
    requestedAt: z.number().int().nonnegative(),
  })
  .strict()
  .refine((j) => j.until >= j.since, { message: "until must not be before since", path: ["until"] });
export type RepriceJob = z.infer<typeof RepriceJobSchema>;

/** What a reprice reports as it goes (job progress) and when done (its return value). */
export interface RepriceProgress {
  /** Traces of the window re-priced so far, of `tracesTotal` (counted when the job started). */
  tracesDone: number;
  tracesTotal: number;
  /** Of tracesDone, the traces whose stored summary changed. */
  tracesChanged: number;
  /** Traces that expired, or kept receiving spans through every try, and were left as they were. */
  tracesSkipped: number;
  /** Model calls whose cost changed (a call priced for the first time included). */
  callsRepriced: number;
  /** Calls that were unpriced and now have a cost (their model is in the table). */
  nowPriced: number;
  /** Calls that had a cost and now have none (their model is no longer in the table). */
  nowUnpriced: number;
  /** Research records whose costs were re-priced (finished researches only). */
  researchesRepriced: number;
  /** The window's total trace cost before and after, USD (exact sums of whole nano-dollars). */
  costBeforeUsd: number;
  costAfterUsd: number;
  /** The price table used: its version (PriceTable.version, a content hash). */
  priceVersion: string;
  /**
   * Where the next step starts: the trace partition and the offset in its start index. A retried attempt (the
   * collector died or the job stalled) resumes here with the figures so far, so they add up over attempts.
   */
  cursor?: { partition: number; offset: number };
}

/**
 * A reprice is retried when the collector died mid-way, from its last reported cursor (a step cut off between its
 * writes and its report is done again and, idempotent, finds those traces unchanged); done jobs stay readable for GET /v1/admin/reprice/:id for a week.
 */
export const REPRICE_JOB_OPTIONS: JobsOptions = {
  attempts: 3,
  backoff: { type: "exponential", delay: 1_000, jitter: 0.5 },
  removeOnComplete: { age: 7 * 24 * 3600, count: 1_000 },
  removeOnFail: { age: 7 * 24 * 3600, count: 1_000 },
};
