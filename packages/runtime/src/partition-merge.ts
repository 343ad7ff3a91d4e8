import { batch, type RedisClient } from "./redis.js";

export interface IndexEntry {
  id: string;
  score: number;
}

/**
 * The order of one sorted set read with ZRANGE … REV: the higher score first, equal scores by member in reverse
 * byte order. Members are ids (research ids, trace ids, anomaly members: ASCII), whose JS string order is their
 * byte order.
 */
export const comesBefore = (a: IndexEntry, b: IndexEntry) => a.score > b.score || (a.score === b.score && a.id > b.id);

const bound = (v: number) => (v === Infinity ? "+inf" : v === -Infinity ? "-inf" : String(v));

interface Source {
  key: string;
  buffer: IndexEntry[];
  /** Next entry of `buffer` to hand out. */
  at: number;
  /** Entries of the key read so far (the next read's offset). */
  offset: number;
  size: number;
  done: boolean;
}

/**
 * The entries scored in [min, max] of one index's partitions (each lists other entities: see key-slot.ts), in the order one index
 * of them all would give (comesBefore), in pieces of at most `most`. Each partition is read `first` entries at a
 * time, doubling up to `most` whenever it runs dry again: a page of `limit` needs at most `limit` from any one
 * partition, and a filtered scan soon reads more per round trip. The dry partitions are refilled in one batch, and
 * an entry is handed out only while every partition that may still hold one before it has one in hand, so the
 * merged order is exact, ties included.
 */
export async function* mergeDesc(
  redis: RedisClient,
  keys: readonly string[],
  range: { min: number; max: number },
  sizes: { first: number; most: number },
): AsyncGenerator<IndexEntry[]> {
  const first = Math.max(1, Math.min(sizes.first, sizes.most));
  const sources: Source[] = keys.map((key) => ({ key, buffer: [], at: 0, offset: 0, size: first, done: false }));
  const [max, min] = [bound(range.max), bound(range.min)];
  const dry = (s: Source) => s.at === s.buffer.length && !s.done;
  for (;;) {
    const refill = sources.filter(dry);
    if (refill.length > 0) {
      const replies = await batch(redis, (commands) => {
        for (const s of refill) commands.zrange(s.key, max, min, "BYSCORE", "REV", "LIMIT", s.offset, s.size, "WITHSCORES");
      });
      refill.forEach((s, i) => {
        const [err, reply] = replies[i]!;
        if (err) throw err;
        const raw = reply as string[];
        s.buffer = [];
        s.at = 0;
        for (let j = 0; j < raw.length; j += 2) s.buffer.push({ id: raw[j]!, score: Number(raw[j + 1]) });
        s.offset += s.buffer.length;
        s.done = s.buffer.length < s.size;
        s.size = Math.min(s.size * 2, sizes.most);
      });
    }
    const piece: IndexEntry[] = [];
    while (piece.length < sizes.most) {
      let best: Source | undefined;
      for (const s of sources) if (s.at < s.buffer.length && (!best || comesBefore(s.buffer[s.at]!, best.buffer[best.at]!))) best = s;
      if (!best) break;
      piece.push(best.buffer[best.at++]!);
      // Its next entry may come before every other head: read it before handing out more.
      if (dry(best)) break;
    }
    if (piece.length === 0) return;
    yield piece;
  }
}

/** How many entries one index holds over its partitions (ZCARD of each, summed). */
export async function indexSize(redis: RedisClient, keys: readonly string[]): Promise<number> {
  const replies = await batch(redis, (commands) => {
    for (const key of keys) commands.zcard(key);
  });
  return replies.reduce((sum, [err, n]) => {
    if (err) throw err;
    return sum + Number(n);
  }, 0);
}
