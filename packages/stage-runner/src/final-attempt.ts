import { UnrecoverableError } from "bullmq";

/**
 * Is this the last attempt BullMQ will make for the job? The one rule, used by
 * the stage processor before it throws (to record `failed` or `stage.retrying`)
 * and by the worker's `failed` listener after (to log and run the final-failure
 * hook). `attemptsMade` counts the attempts that failed before this one, as
 * `job.attemptsMade` does inside the processor (BullMQ adds this one after).
 *
 * Unrecoverable covers our own errors (they subclass bullmq's) and bullmq's
 * "job started more than allowable limit". A job that stalled too often never
 * reaches either place: bullmq 6 fails it in its stalled-jobs script and
 * emits no worker `failed` event for it.
 */
export function isFinalAttempt(err: unknown, attemptsMade: number, attempts: number): boolean {
  return err instanceof UnrecoverableError || attemptsMade + 1 >= attempts;
}
