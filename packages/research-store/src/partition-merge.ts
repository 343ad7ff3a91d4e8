import { batch, type RedisClient } from "@tracelane/runtime";

export interface IndexEntry {
  id: string;
  score: number;
}

interface Source {
  key: string;
  buffer: IndexEntry[];
  offset: number;
  done: boolean;
}

/** Newest first: the higher score, and on equal scores the higher id (the order ZREVRANGEBYSCORE gives one index). */
const before = (a: IndexEntry, b: IndexEntry) => a.score > b.score || (a.score === b.score && a.id > b.id);

/**
 * The entries of several sorted sets (one index's partitions) between `max` and `min`, newest first across all of
 * them, in pages of up to `chunk`: as if they were one index. Each partition is read `chunk` entries per round trip,
 * every partition that ran dry in the same batch; an entry is only handed out once every partition that could
 * still hold a newer one has one in hand, so the order is exact (ties included).
 */
export async function* newestFirst(
  redis: RedisClient,
  keys: readonly string[],
  range: { max: string; min: string },
  chunk: number,
): AsyncGenerator<IndexEntry[]> {
  const sources: Source[] = keys.map((key) => ({ key, buffer: [], offset: 0, done: false }));
  for (;;) {
    const dry = sources.filter((s) => s.buffer.length === 0 && !s.done);
    if (dry.length > 0) {
      const replies = await batch(redis, (b) => {
        for (const s of dry) b.zrevrangebyscore(s.key, range.max, range.min, "WITHSCORES", "LIMIT", s.offset, chunk);
      });
      dry.forEach((s, i) => {
        const [err, reply] = replies[i]!;
        if (err) throw err;
        const raw = reply as string[];
        for (let j = 0; j < raw.length; j += 2) s.buffer.push({ id: raw[j]!, score: Number(raw[j + 1]) });
        s.offset += raw.length / 2;
        if (raw.length / 2 < chunk) s.done = true;
      });
    }
    const page: IndexEntry[] = [];
    while (page.length < chunk) {
      let best: Source | undefined;
      for (const s of sources) if (s.buffer.length > 0 && (!best || before(s.buffer[0]!, best.buffer[0]!))) best = s;
      if (!best) break;
      page.push(best.buffer.shift()!);
      // Its next entry may be newer than every other head: read it before handing out more.
      if (best.buffer.length === 0 && !best.done) break;
    }
    if (page.length === 0) return;
    yield page;
  }
}
