import { Queue, type ConnectionOptions, type JobsOptions } from "bullmq";
import { withPublishSpan } from "@tracelane/tracing";
import { StageJobSchema, type StageJob } from "./payloads.js";
import { DEFAULT_JOB_OPTIONS, DEFAULT_QUEUE_PREFIX, QUEUE_NAMES, STAGES, stageJobId, type Stage } from "./queues.js";

export interface StageQueuesOptions {
  connection: ConnectionOptions;
  prefix?: string;
  /** Overrides of DEFAULT_JOB_OPTIONS (see jobOptionsFromEnv). */
  jobOptions?: JobsOptions;
}

/**
 * The pipeline's queues, created in one place with the retry policy. Producers
 * (the api, each stage enqueueing the next) publish through `publish`, which
 * traces the hop and uses the deterministic job id.
 */
export class StageQueues {
  private readonly queues: Record<Stage, Queue<StageJob>>;

  constructor(opts: StageQueuesOptions) {
    const prefix = opts.prefix ?? DEFAULT_QUEUE_PREFIX;
    this.queues = Object.fromEntries(
      STAGES.map((stage) => [
        stage,
        new Queue<StageJob>(QUEUE_NAMES[stage], {
          connection: opts.connection,
          prefix,
          defaultJobOptions: { ...DEFAULT_JOB_OPTIONS, ...opts.jobOptions },
        }),
      ]),
    ) as Record<Stage, Queue<StageJob>>;
  }

  queue(stage: Stage): Queue<StageJob> {
    return this.queues[stage];
  }

  /**
   * Enqueue `stage` for a research inside a PRODUCER span. Adding an id that
   * already exists is a no-op in BullMQ, so calling this twice (a retried
   * stage, a retried HTTP request) never creates a second job.
   */
  async publish(researchId: string, stage: Stage): Promise<{ jobId: string }> {
    const queue = this.queues[stage];
    const jobId = stageJobId(researchId, stage);
    return withPublishSpan({ queue: queue.name, messageId: jobId }, async (carrier) => {
      const data = StageJobSchema.parse({ researchId, stage, trace: carrier, enqueuedAt: Date.now() });
      await queue.add(stage, data, { jobId });
      return { jobId };
    });
  }

  /** Remove a research's jobs that have not started (cancel). Active jobs see the cancelled status. */
  async removeWaiting(researchId: string): Promise<void> {
    await Promise.all(
      STAGES.map(async (stage) => {
        const job = await this.queues[stage].getJob(stageJobId(researchId, stage));
        if (!job) return;
        const state = await job.getState();
        if (state === "waiting" || state === "delayed" || state === "prioritized" || state === "waiting-children") {
          await job.remove().catch(() => undefined); // it may have just become active
        }
      }),
    );
  }

  async close(): Promise<void> {
    await Promise.all(STAGES.map((s) => this.queues[s].close()));
  }
}
