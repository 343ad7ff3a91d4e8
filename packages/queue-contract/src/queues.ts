import type { JobsOptions } from "bullmq";
import { RESEARCH_PIPELINE, type Stage } from "@tracelane/pipeline";
import { envInt, hashTag, spreadTag } from "@tracelane/runtime";

export type { Stage };

/** The shipped pipeline's stages, in order (from @tracelane/pipeline; nobody lists them again). */
export const STAGES = RESEARCH_PIPELINE.names;

/** BullMQ queue name per stage of the shipped pipeline, from its definition. */
export const QUEUE_NAMES = Object.fromEntries(RESEARCH_PIPELINE.stages.map((s) => [s.stage, s.queue])) as Record<Stage, string>;

/** Redis key prefix BullMQ uses for every queue of the pipeline. */
export const DEFAULT_QUEUE_PREFIX = "tracelane";

/**
 * The BullMQ prefix of one queue: `prefix` plus the queue's own hash tag (`tracelane:{research-analysis}`, or
 * `{research-analysis.<j>}`). BullMQ's scripts touch many keys of a queue at once, so on a Redis Cluster all of them
 * must share a slot; a tag per queue (not one for the whole prefix) spreads the queues over the masters, and the
 * k-th of the pipeline's n queues is tagged into the k-th n-th of the slot space (runtime's spreadTag): the queues
 * are the busiest keys, and with as many masters as queues each master gets one. A fan-out's claim jobs are children
 * in their parent's own queue, so no script crosses queues. Adding a stage may move the others' tags: drain the
 * queues first.
 */
export function queuePrefix(prefix: string, queue: string, queues: readonly string[] = PIPELINE_QUEUES): string {
  const k = queues.indexOf(queue);
  return `${prefix}:${k < 0 ? hashTag(queue) : spreadTag(queue, k, queues.length)}`;
}

const PIPELINE_QUEUES = RESEARCH_PIPELINE.stages.map((s) => s.queue);

/** The names of a queue's `shards` shards: the queue's own name, then `<queue>-1`, `<queue>-2`, ... */
export const shardQueueNames = (queue: string, shards: number): string[] =>
  Array.from({ length: Math.max(1, shards) }, (_, k) => (k === 0 ? queue : `${queue}-${k}`));

/** TRACELANE_QUEUE_SHARDS as every producer and worker reads it (see StageQueuesOptions.shards). */
export const QUEUE_SHARDS_MAX = 16;
export const envQueueShards = () => envInt(1, { min: 1, max: QUEUE_SHARDS_MAX });

/**
 * Deterministic job id per (research, stage): BullMQ ignores an add whose id
 * already exists, so a retried stage can never enqueue its successor twice.
 * BullMQ 6 forbids ':' in custom ids, hence '-'.
 */
export function stageJobId(researchId: string, stage: string): string {
  return `${researchId}-${stage}`;
}

/** Deterministic id of claim `index`'s job (a child of the stage's job): a retried parent never adds a claim twice. */
export function claimJobId(researchId: string, stage: string, index: number): string {
  return `${researchId}-${stage}-claim${index}`;
}

/**
 * Retry policy lives where queues are created. Transient failures inside a
 * model call are retried by the model client first; these attempts cover the
 * rest (crashes, Redis blips, a provider down for longer than the client's budget).
 */
export const DEFAULT_JOB_OPTIONS: JobsOptions = {
  attempts: 3,
  backoff: { type: "exponential", delay: 1_000, jitter: 0.5 },
  removeOnComplete: { age: 24 * 3600, count: 10_000 },
  removeOnFail: { age: 7 * 24 * 3600, count: 50_000 },
};

/**
 * Producers (the api and every stage worker) read the same two variables, so
 * the policy of a job does not depend on who enqueued it:
 * JOB_ATTEMPTS (default 3) and JOB_BACKOFF_MS (first retry delay, default 1000).
 */
export function jobOptionsFromEnv(env: Record<string, string | undefined> = process.env): JobsOptions {
  const out: JobsOptions = {};
  const attempts = env.JOB_ATTEMPTS?.trim();
  const backoff = env.JOB_BACKOFF_MS?.trim();
  if (attempts) {
    const n = Number(attempts);
    if (!Number.isInteger(n) || n < 1 || n > 100) throw new Error(`JOB_ATTEMPTS must be an integer from 1 to 100 (got "${attempts}")`);
    out.attempts = n;
  }
  if (backoff) {
    const n = Number(backoff);
    if (!Number.isInteger(n) || n < 0) throw new Error(`JOB_BACKOFF_MS must be a non-negative integer (got "${backoff}")`);
    out.backoff = { type: "exponential", delay: n, jitter: 0.5 };
  }
  return out;
}
