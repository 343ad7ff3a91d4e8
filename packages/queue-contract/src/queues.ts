import type { JobsOptions } from "bullmq";

/** The three research stages, in pipeline order. */
export const STAGES = ["analysis", "factcheck", "synthesis"] as const;
export type Stage = (typeof STAGES)[number];

/** BullMQ queue name per stage. Nobody else spells these strings. */
export const QUEUE_NAMES: Record<Stage, string> = {
  analysis: "research-analysis",
  factcheck: "research-factcheck",
  synthesis: "research-synthesis",
};

/** Redis key prefix BullMQ uses for every queue of the pipeline. */
export const DEFAULT_QUEUE_PREFIX = "tracelane";

export function nextStage(stage: Stage): Stage | undefined {
  return STAGES[STAGES.indexOf(stage) + 1];
}

/**
 * Deterministic job id per (research, stage): BullMQ ignores an add whose id
 * already exists, so a retried stage can never enqueue its successor twice.
 * BullMQ 6 forbids ':' in custom ids, hence '-'.
 */
export function stageJobId(researchId: string, stage: Stage): string {
  return `${researchId}-${stage}`;
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
