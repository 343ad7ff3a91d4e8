import type { StageQueues } from "@tracelane/queue-contract";
import { isConnectionError } from "../http/errors.js";

export type QueueDepth = { full: false } | { full: true; stage: string; queue: string; waiting: number };

/**
 * Backpressure for POST /v1/research: the pipeline is full while any stage queue holds MAX_QUEUE_DEPTH or
 * more jobs waiting to run (BullMQ getWaitingCount: waiting, prioritized, delayed for a retry). The counts
 * are read at most once per `cacheMs` (QUEUE_DEPTH_CACHE_MS), concurrent callers sharing the read, so the cap is
 * soft: a burst inside one interval can pass it by that burst. Queues that cannot be reached count as not
 * full (fails open, not cached): the enqueue then fails as well, and the route answers that 503 as before.
 */
export class QueueDepthGate {
  private reading: { at: number; depth: Promise<QueueDepth> } | undefined;

  constructor(
    private readonly queues: StageQueues,
    /** MAX_QUEUE_DEPTH; 0 = no limit. */
    private readonly maxDepth: number,
    /** QUEUE_DEPTH_CACHE_MS: a burst of POSTs costs one read per stage per interval. */
    private readonly cacheMs: number,
  ) {}

  get enabled(): boolean {
    return this.maxDepth > 0;
  }

  async check(): Promise<QueueDepth> {
    if (!this.enabled) return { full: false };
    const now = performance.now();
    if (this.reading && now - this.reading.at < this.cacheMs) return this.reading.depth;
    const depth = this.read();
    const reading = { at: now, depth };
    this.reading = reading;
    return depth.catch((err: unknown) => {
      if (this.reading === reading) this.reading = undefined;
      if (isConnectionError(err)) return { full: false } as const;
      throw err;
    });
  }

  private async read(): Promise<QueueDepth> {
    const stages = this.queues.pipeline.stages;
    const waiting = await Promise.all(
      stages.map(async (s) =>
        (await Promise.all(this.queues.shardsOf(s.stage).map((q) => q.getWaitingCount()))).reduce((a, b) => a + b, 0),
      ),
    );
    const i = waiting.findIndex((n) => n >= this.maxDepth);
    return i === -1 ? { full: false } : { full: true, stage: stages[i]!.stage, queue: stages[i]!.queue, waiting: waiting[i]! };
  }
}
