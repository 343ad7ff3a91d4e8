import type { StageQueues } from "@tracelane/queue-contract";
import type { ResearchStore } from "@tracelane/research-store";
import type { Logger } from "@tracelane/tracing";

export interface LostEnqueueRecoveryOptions {
  store: ResearchStore;
  queues: StageQueues;
  logger: Logger;
  /** How often to look. 0 turns recovery off. */
  intervalMs: number;
  /** A research queued for longer than this without starting is checked. */
  minAgeMs: number;
}

/**
 * The api creates the research record, then enqueues its first job. A crash between the two
 * would leave a research `queued` forever. This re-publishes the first stage of researches that
 * stayed queued too long: the job id is deterministic, so when the job does exist (a long
 * backlog) the publish is a no-op, and when it was lost it is created. Every api replica may run
 * it; running it twice is harmless for the same reason.
 */
export function startLostEnqueueRecovery(opts: LostEnqueueRecoveryOptions): { stop(): Promise<void> } {
  if (opts.intervalMs <= 0) return { stop: async () => {} };
  let running: Promise<void> | undefined;
  const sweep = async () => {
    const ids = await opts.store.queuedOlderThan(opts.minAgeMs);
    for (const id of ids) await opts.queues.publish(id, opts.queues.firstStage);
    if (ids.length) opts.logger.info({ count: ids.length }, "re-published the first stage of long-queued researches");
  };
  const timer = setInterval(() => {
    if (running) return;
    running = sweep()
      .catch((err: unknown) => opts.logger.warn({ err }, "lost-enqueue recovery sweep failed; will retry"))
      .finally(() => (running = undefined));
  }, opts.intervalMs);
  timer.unref();
  return {
    stop: async () => {
      clearInterval(timer);
      await running;
    },
  };
}
