import calculateSlot from "cluster-key-slot";

/**
 * Hash tags: on a Redis Cluster a key lives in the slot of the part between its first `{` and `}`, and a script
 * or a multi-key command may only touch keys of one slot. Every key family of tracelane is built with a tag, the
 * same on one Redis and on a Cluster, so nothing but the client factory knows which it talks to:
 *
 *   - per-entity keys share their entity's tag (a research's record and events; a trace's spans and summary);
 *   - an index over many entities is split into partitions, each kept beside the entities it lists (same tag),
 *     so the script that changes an entity updates its index in the same step; readers merge the partitions.
 */

export const SLOT_COUNT = 16384;

/** The Cluster slot of a key (its hash tag's, when it has one): the function ioredis routes by. */
export const slotOf = (key: string): number => calculateSlot(key);

/** `{value}`: makes every key that contains it live in one slot. */
export const hashTag = (value: string): string => `{${value}}`;

/** A stable partition 0..n-1 for an id (FNV-1a): the same id always lands in the same partition. */
export function partitionOf(id: string, n: number): number {
  if (n <= 1) return 0;
  let h = 0x811c9dc5;
  for (let i = 0; i < id.length; i++) {
    h ^= id.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0) % n;
}

/**
 * `{name}`, or `{name.<j>}` for the first j that puts it there: a tag for `name` whose slot falls in the k-th n-th
 * of the slot space. A cluster's masters own contiguous slot ranges, so n things tagged this way spread over them
 * as evenly as those ranges do, not as a hash happens to fall.
 */
export function spreadTag(name: string, k: number, n: number): string {
  const from = Math.floor((k * SLOT_COUNT) / n);
  const to = Math.floor(((k + 1) * SLOT_COUNT) / n);
  for (let j = 0; ; j++) {
    const tag = hashTag(j === 0 ? name : `${name}.${j}`);
    const slot = slotOf(tag);
    if (slot >= from && slot < to) return tag;
  }
}

const tagCache = new Map<string, readonly string[]>();

/** The hash tags of `n` partitions of a key family: partition k's is spreadTag(`<family><k>`, k, n). */
export function partitionTags(family: string, n: number): readonly string[] {
  const cacheKey = `${family}\u0000${n}`;
  const cached = tagCache.get(cacheKey);
  if (cached) return cached;
  const tags = Array.from({ length: n }, (_, k) => spreadTag(`${family}${k}`, k, n));
  tagCache.set(cacheKey, tags);
  return tags;
}
