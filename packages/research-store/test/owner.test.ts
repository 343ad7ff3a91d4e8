import { randomUUID } from "node:crypto";
import { Redis } from "ioredis";
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from "vitest";
import { ResearchStore } from "@tracelane/research-store";

let redis: Redis;
const newId = () => randomUUID().replaceAll("-", "");
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

function freshStore(): ResearchStore {
  const store = new ResearchStore(redis, { prefix: `test-owner-${newId()}` });
  stores.push(store);
  return store;
}

async function create(store: ResearchStore, owner: string | undefined, traceId: string | null = null): Promise<string> {
  const id = newId();
  await store.create({ id, query: `q ${id}`, options: {}, traceId, ...(owner ? { owner } : {}) });
  await new Promise((r) => setTimeout(r, 2)); // distinct createdAt
  return id;
}

describe("research ownership", () => {
  it("lists only an owner's researches, newest first, across pages and with a status", async () => {
    const store = freshStore();
    const a1 = await create(store, "key_a");
    const b1 = await create(store, "key_b");
    const a2 = await create(store, "key_a");
    const open = await create(store, undefined);
    const a3 = await create(store, "key_a");
    await store.cancel(a2);

    expect((await store.list({ owner: "key_a" })).researches.map((r) => r.id)).toEqual([a3, a2, a1]);
    expect((await store.list({ owner: "key_b" })).researches.map((r) => r.id)).toEqual([b1]);
    expect((await store.list({ owner: "key_c" })).researches).toEqual([]);
    expect((await store.list({ owner: "key_a", status: "queued" })).researches.map((r) => r.id)).toEqual([a3, a1]);
    const first = await store.list({ owner: "key_a", limit: 2 });
    expect(first.researches.map((r) => r.id)).toEqual([a3, a2]);
    const second = await store.list({ owner: "key_a", limit: 2, cursor: first.nextCursor! });
    expect(second.researches.map((r) => r.id)).toEqual([a1]);
    // Without an owner: everyone's, and each row says whose it is.
    const all = await store.list();
    expect(all.researches.map((r) => r.id)).toEqual([a3, open, a2, b1, a1]);
    expect(all.researches.map((r) => r.owner)).toEqual(["key_a", undefined, "key_a", "key_b", "key_a"]);
  });

  it("tells who owns a research, and that a missing one does not exist", async () => {
    const store = freshStore();
    const mine = await create(store, "key_a");
    const open = await create(store, undefined);
    expect(await store.ownerOf(mine)).toEqual({ owner: "key_a" });
    expect(await store.ownerOf(open)).toEqual({ owner: undefined });
    expect(await store.ownerOf(newId())).toBeUndefined();
  });

  it("maps a trace id to the research that first used it and its owner, in one lookup", async () => {
    const store = freshStore();
    const [t1, t2, t3] = [newId(), newId(), newId()];
    const r1 = await create(store, "key_a", t1);
    const r2 = await create(store, undefined, t2);
    // A later research continuing t1 (a trusted traceparent) does not take it over.
    await create(store, "key_b", t1);
    expect(await store.traceOwners([t1, t2, t3])).toEqual([
      { researchId: r1, owner: "key_a" },
      { researchId: r2, owner: undefined },
      undefined,
    ]);
    expect(await store.traceOwners([])).toEqual([]);
  });
});
