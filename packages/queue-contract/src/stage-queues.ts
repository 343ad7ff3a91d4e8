import { Queue, type ConnectionOptions, type JobsOptions } from "bullmq";
import { ATTR_RESEARCH_ID, MAX_CLAIMS_LIMIT, RESEARCH_PIPELINE, type Pipeline, type Stage } from "@tracelane/pipeline";
// The messaging entry only: the queue contract must not load the OpenTelemetry SDK into every producer.
import { withPublishSpan } from "@tracelane/tracing/messaging";
import { stageJobSchema, type StageJob } from "./payloads.js";
import { partitionOf } from "@tracelane/runtime";
import { claimJobId, DEFAULT_JOB_OPTIONS, DEFAULT_QUEUE_PREFIX, queuePrefix, shardQueueNames, stageJobId } from "./queues.js";

export interface StageQueuesOptions<S extends string = Stage> {
  connection: ConnectionOptions;
  prefix?: string;
  /** Overrides of DEFAULT_JOB_OPTIONS (see jobOptionsFromEnv). */
  jobOptions?: JobsOptions;
  /** The stages and their queues; default the shipped research pipeline. */
  pipeline?: Pipeline<S, string>;
  /**
   * TRACELANE_QUEUE_SHARDS: each stage's queue split into this many BullMQ queues (default 1), a research's jobs
   * always in the same one (by research id). A queue lives in one Redis Cluster slot, so one busy stage (a fan-out
   * adds 9 jobs per research) loads one master; shards spread it. Every producer and worker must agree.
   */
  shards?: number;
}

/**
 * The pipeline's queues, created in one place with the retry policy. Producers
 * (the api, each stage enqueueing the next) publish through `publish`, which
 * traces the hop and uses the deterministic job id.
 */
export class StageQueues<S extends string = Stage> {
  readonly pipeline: Pipeline<S, string>;
  readonly shards: number;
  /** Per stage, its queue's shards (shard 0 first). */
  private readonly queues: Map<S, Queue<StageJob<S>>[]>;
  private readonly jobSchema;

  constructor(opts: StageQueuesOptions<S>) {
    const prefix = opts.prefix ?? DEFAULT_QUEUE_PREFIX;
    this.pipeline = opts.pipeline ?? (RESEARCH_PIPELINE as unknown as Pipeline<S, string>);
    this.shards = opts.shards ?? 1;
    this.jobSchema = stageJobSchema(this.pipeline);
    // Shard-major (every stage's shard 0, then every stage's shard 1, ...): spread over the slot space in this
    // order, each n-th of it (each master, with as many masters as shards) gets one shard of every stage.
    const names = this.pipeline.stages.map((s) => shardQueueNames(s.queue, this.shards));
    const all = Array.from({ length: this.shards }, (_, k) => names.map((shards) => shards[k]!)).flat();
    this.queues = new Map(
      this.pipeline.stages.map((s) => [
        s.stage,
        shardQueueNames(s.queue, this.shards).map(
          (name) =>
            new Queue<StageJob<S>>(name, {
              connection: opts.connection,
              prefix: queuePrefix(prefix, name, all),
              defaultJobOptions: { ...DEFAULT_JOB_OPTIONS, ...opts.jobOptions },
            }),
        ),
      ]),
    );
  }

  /** The first stage's queue is where a research starts. */
  get firstStage(): S {
    return this.pipeline.first;
  }

  /** Every shard of a stage's queue (one unless TRACELANE_QUEUE_SHARDS): what its workers consume. */
  shardsOf(stage: S): Queue<StageJob<S>>[] {
    const queues = this.queues.get(stage);
    if (!queues) throw new Error(`no queue for stage "${stage}"; the pipeline's stages are ${this.pipeline.names.join(", ")}`);
    return queues;
  }

  /** The queue (shard) of a stage that holds a research's jobs; without a research, the stage's first shard. */
  queue(stage: S, researchId?: string): Queue<StageJob<S>> {
    const queues = this.shardsOf(stage);
    return queues[researchId === undefined ? 0 : partitionOf(researchId, queues.length)]!;
  }

  /**
   * Enqueue `stage` for a research inside a PRODUCER span. Adding an id that
   * already exists is a no-op in BullMQ, so calling this twice (a retried
   * stage, a retried HTTP request) never creates a second job.
   */
  async publish(researchId: string, stage: S): Promise<{ jobId: string }> {
    const queue = this.queue(stage, researchId);
    const jobId = stageJobId(researchId, stage);
    return withPublishSpan({ queue: queue.name, messageId: jobId }, async (carrier, span) => {
      // So a research's trace is known as one from its first span on (GET /v1/traces lists research traces).
      span.setAttribute(ATTR_RESEARCH_ID, researchId);
      const data = this.jobSchema.parse({ researchId, stage, trace: carrier, enqueuedAt: Date.now() }) as StageJob<S>;
      await queue.add(stage, data, { jobId });
      return { jobId };
    });
  }

  /**
   * Add one child job per claim under the stage's own (parent) job, each inside its PRODUCER span, so the
   * claim's CONSUMER span continues from the fan-out. Ids are deterministic (adding an existing one is a
   * no-op), and a claim job that fails for good fails its parent (the research then fails with it).
   */
  async publishClaims(researchId: string, stage: S, count: number): Promise<{ jobIds: string[] }> {
    // The parent's own shard: a flow's jobs share its queue's slot.
    const queue = this.queue(stage, researchId);
    const parent = { id: stageJobId(researchId, stage), queue: queue.qualifiedName };
    const jobs = await Promise.all(
      Array.from({ length: count }, (_, claim) => {
        const jobId = claimJobId(researchId, stage, claim);
        return withPublishSpan({ queue: queue.name, messageId: jobId }, async (carrier, span) => {
          span.setAttribute(ATTR_RESEARCH_ID, researchId);
          const data = this.jobSchema.parse({ researchId, stage, trace: carrier, enqueuedAt: Date.now(), claim }) as StageJob<S>;
          // A done claim's job goes at once: its check is on the research record and its result in the parent's
          // processed list, and kept jobs of one queue all sit in its one Cluster slot (8 per research here).
          return { name: `${stage}-claim`, data, opts: { jobId, parent, failParentOnFailure: true, removeOnComplete: true } };
        });
      }),
    );
    await queue.addBulk(jobs);
    return { jobIds: jobs.map((j) => j.opts.jobId) };
  }

  /** Remove a research's jobs that have not started (cancel). Active jobs see the cancelled status. */
  async removeWaiting(researchId: string): Promise<void> {
    await Promise.all(
      this.pipeline.names.map(async (stage) => {
        const queue = this.queue(stage, researchId);
        const ids = [stageJobId(researchId, stage)];
        // A fan-out stage's claim jobs too (removing a parent first would remove its children with it).
        if (stage === this.pipeline.fanOutStage)
          ids.unshift(...Array.from({ length: MAX_CLAIMS_LIMIT }, (_, i) => claimJobId(researchId, stage, i)));
        for (const id of ids) {
          const job = await queue.getJob(id);
          if (!job) continue;
          const state = await job.getState();
          if (state === "waiting" || state === "delayed" || state === "prioritized" || state === "waiting-children") {
            await job.remove().catch(() => undefined); // it may have just become active
          }
        }
      }),
    );
  }

  async close(): Promise<void> {
    await Promise.all([...this.queues.values()].flat().map((q) => q.close()));
  }
}
