export const DEFAULT_RESEARCH_PREFIX = "tracelane:research";

export function researchKeys(prefix: string, id: string) {
  return {
    record: `${prefix}:${id}`,
    events: `${prefix}:${id}:events`,
  };
}

export const idempotencyKey = (prefix: string, key: string) => `${prefix}:idem:${key}`;

/** Sorted set of researches still `queued` (score: created at), for recovering lost enqueues. */
export const queuedIndexKey = (prefix: string) => `${prefix}:queued`;
