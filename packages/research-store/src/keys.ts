export const DEFAULT_RESEARCH_PREFIX = "tracelane:research";

export function researchKeys(prefix: string, id: string) {
  return {
    record: `${prefix}:${id}`,
    events: `${prefix}:${id}:events`,
  };
}

export const idempotencyKey = (prefix: string, key: string) => `${prefix}:idem:${key}`;
