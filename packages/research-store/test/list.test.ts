import { randomUUID } from "node:crypto";
import { Redis } from "ioredis";
import { afterEach, beforeAll, afterAll, describe, expect, inject, it } from "vitest";
import {
  InvalidCursorError,
  RESEARCH_PARTITIONS,
  RESEARCH_STATUSES,
  ResearchStore,
  researchIndexKeys,
  researchKeys,
  researchPartition,
  type ResearchStatus,
} from "@tracelane/research-store";

let redis: Redis;
const newId = () => randomUUID().replaceAll("-", "");
const usage = { inputTokens: 10, outputTokens: 20 };
const stores: ResearchStore[] = [];

beforeAll(() => {
  redis = new Redis(inject("redisUrl"));
});
afterEach(async () => {
  for (const store of stores.splice(0)) {
    const keys = await redis.keys(`${store.prefix}:*`);
    if (keys.length) await redis.del(...keys);
  }
});
afterAll(() => redis.disconnect());

/** A store under its own prefix, so each test lists only what it created. */
function freshStore(ttlSeconds?: number): ResearchStore {
  const store = new ResearchStore(redis, { prefix: `test-list-${newId()}`, ...(ttlSeconds ? { ttlSeconds } : {}) });
  stores.push(store);
  return store;
}

async function createSome(store: ResearchStore, n: number): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    const id = newId();
    await store.create({ id, query: `q${i}`, options: {}, traceId: null });
    ids.push(id);
    await new Promise((r) => setTimeout(r, 2)); // distinct createdAt
  }
  return ids;
}

const ids = (page: { researches: { id: string }[] }) => page.researches.map((r) => r.id);

/** The index of research `id`'s partition: of every research, or of those in `status`. */
const indexOf = (store: ResearchStore, id: string, status?: ResearchStatus) => {
  const indexes = researchIndexKeys(store.prefix, researchPartition(id));
  return status ? indexes.byStatus[status] : indexes.all;
};

/** Every status index (of its partition) that holds `id`. */
async function indexesOf(store: ResearchStore, id: string): Promise<string[]> {
  const found: string[] = [];
  for (const status of RESEARCH_STATUSES) {
    if ((await redis.zscore(indexOf(store, id, status), id)) !== null) found.push(status);
  }
  return found;
}

/** Every research in the store's indexes, newest first (equal createdAt: higher id first), over all partitions. */
async function allNewestFirst(store: ResearchStore): Promise<string[]> {
  const entries: { id: string; score: number }[] = [];
  for (let k = 0; k < RESEARCH_PARTITIONS; k++) {
    const raw = await redis.zrange(researchIndexKeys(store.prefix, k).all, 0, -1, "WITHSCORES");
    for (let i = 0; i < raw.length; i += 2) entries.push({ id: raw[i]!, score: Number(raw[i + 1]) });
  }
  return entries.sort((a, b) => b.score - a.score || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0)).map((e) => e.id);
}

describe("ResearchStore.list", () => {
  it("lists researches newest first, each with its status, stage, per-stage models and totals, without outputs", async () => {
    const store = freshStore();
    const [a, b] = await createSome(store, 2);
    await store.stageStarted(a!, "analysis", { model: "gpt-4.1", attempt: 1, queueWaitMs: 3 });
    await store.stageCompleted(a!, "analysis", { output: "A", model: "gpt-4.1", usage, costUsd: 0.002, latencyMs: 7, next: "factcheck" });

    const page = await store.list();
    expect(ids(page)).toEqual([b, a]);
    expect(page.nextCursor).toBeUndefined();
    const row = page.researches[1]!;
    expect(row).toMatchObject({
      id: a,
      status: "running",
      stage: "factcheck",
      query: "q0",
      stages: { analysis: { status: "completed", model: "gpt-4.1", costUsd: 0.002 }, factcheck: { status: "queued" } },
      totals: { inputTokens: 10, outputTokens: 20, costUsd: 0.002 },
    });
    expect(row).not.toHaveProperty("result");
    expect(row).not.toHaveProperty("partialResult");
  });

  it("keeps each research in the index of its current status through every transition", async () => {
    const store = freshStore();
    const [queued, running, completed, failed, cancelled] = await createSome(store, 5);
    for (const id of [running, completed, failed]) await store.stageStarted(id!, "analysis", { model: "m", attempt: 1, queueWaitMs: 0 });
    await store.completed(completed!);
    await store.failed(failed!, { stage: "analysis", type: "provider_error", message: "boom" });
    await store.cancel(cancelled!);

    const expected = { queued, running, completed, failed, cancelled };
    for (const [status, id] of Object.entries(expected)) {
      expect(ids(await store.list({ status: status as keyof typeof expected })), status).toEqual([id]);
      expect(await indexesOf(store, id!)).toEqual([status]);
    }
    expect(ids(await store.list())).toEqual([cancelled, failed, completed, running, queued]);
  });

  it("pages with a cursor without repeating or skipping, also across researches created in the same millisecond", async () => {
    const store = freshStore();
    const created = await createSome(store, 7);
    // Four of them share one createdAt, as researches created in the same millisecond do.
    const same = Number(await redis.zscore(indexOf(store, created[2]!), created[2]!));
    for (const id of created.slice(2, 6)) {
      await redis.zadd(indexOf(store, id), same, id);
      await redis.zadd(indexOf(store, id, "queued"), same, id);
    }
    const seen: string[] = [];
    let cursor: string | undefined;
    let pages = 0;
    do {
      const page = await store.list({ limit: 2, ...(cursor ? { cursor } : {}) });
      expect(page.researches.length).toBeLessThanOrEqual(2);
      seen.push(...ids(page));
      cursor = page.nextCursor;
      pages++;
    } while (cursor && pages < 10);
    expect(pages).toBe(4);
    expect([...seen].sort()).toEqual([...created].sort());
    expect(new Set(seen).size).toBe(created.length);
    expect(seen).toEqual(await allNewestFirst(store));
  });

  it("filters by a createdAt window, inclusive at both ends", async () => {
    const store = freshStore();
    const created = await createSome(store, 4);
    const at = async (id: string) => Number(await redis.zscore(indexOf(store, id), id));
    const page = await store.list({ since: await at(created[1]!), until: await at(created[2]!) });
    expect(ids(page)).toEqual([created[2], created[1]]);
  });

  it("drops entries whose record expired from every index when it meets them", async () => {
    const store = freshStore();
    const [keep, expire] = await createSome(store, 2);
    await redis.del(researchKeys(store.prefix, expire!).record);
    expect(ids(await store.list())).toEqual([keep]);
    expect(await redis.zscore(indexOf(store, expire!), expire!)).toBeNull();
    expect(await indexesOf(store, expire!)).toEqual([]);
  });

  it("trims entries created longer than the record TTL ago when a research is created", async () => {
    const store = freshStore(60);
    const [old] = await createSome(store, 1);
    const longAgo = Date.now() - 61_000;
    await redis.zadd(indexOf(store, old!), longAgo, old!);
    await redis.zadd(indexOf(store, old!, "queued"), longAgo, old!);
    // The trim runs over the created research's partition (the one its script touches): create one beside it.
    let fresh = newId();
    while (researchPartition(fresh) !== researchPartition(old!)) fresh = newId();
    await store.create({ id: fresh, query: "fresh", options: {}, traceId: null });
    expect(await redis.zrange(indexOf(store, old!), 0, -1)).toEqual([fresh]);
    expect(await redis.zrange(indexOf(store, old!, "queued"), 0, -1)).toEqual([fresh]);
  });

  it("rejects a cursor it did not make", async () => {
    const store = freshStore();
    await expect(store.list({ cursor: "not-a-cursor" })).rejects.toBeInstanceOf(InvalidCursorError);
    await expect(store.list({ cursor: Buffer.from('{"k":"x"}').toString("base64url") })).rejects.toBeInstanceOf(InvalidCursorError);
  });
});
