import { afterEach, describe, expect, it } from "vitest";
import { analysisCounts, postResearch, startApi, uid, type TestApi } from "./helpers.js";

/** A manual clock for the limiter: the window passes when the test says so, never while it counts. */
function manualClock(start = Date.parse("2026-12-02T12:00:00Z")) {
  let now = start;
  return { now: () => now, advance: (ms: number) => (now += ms) };
}

const started: TestApi[] = [];
afterEach(async () => {
  await Promise.all(started.splice(0).map((a) => a.close()));
});

async function api(env: Record<string, string>, rateLimitNow?: () => number): Promise<TestApi> {
  const a = await startApi({ env, ...(rateLimitNow ? { rateLimitNow } : {}) });
  started.push(a);
  return a;
}

const list = (a: TestApi) => fetch(`${a.url}/v1/research?limit=1`);

async function errorOf(res: Response) {
  return ((await res.json()) as { error: { code: string; message: string; details: Record<string, unknown> } }).error;
}

describe("rate limits (RATE_LIMIT_PER_MINUTE, RATE_LIMIT_NEW_RESEARCH_PER_MINUTE)", () => {
  it("answers 429 rate_limited with Retry-After and RateLimit fields once a key's minute quota is spent, and admits again after Retry-After", async () => {
    const clock = manualClock();
    const a = await api({ RATE_LIMIT_PER_MINUTE: "3" }, clock.now);

    const remaining: string[] = [];
    for (let i = 0; i < 3; i++) {
      const res = await list(a);
      expect(res.status).toBe(200);
      expect(res.headers.get("ratelimit-policy")).toBe('"api";q=3;w=60');
      remaining.push(res.headers.get("ratelimit")!);
    }
    // GCRA: one request per 20 s, a burst of 3; each fills the quota back 20 s later.
    expect(remaining).toEqual(['"api";r=2;t=20', '"api";r=1;t=40', '"api";r=0;t=60']);

    const refused = await list(a);
    expect(refused.status).toBe(429);
    expect(refused.headers.get("retry-after")).toBe("20");
    expect(refused.headers.get("ratelimit")).toBe('"api";r=0;t=60');
    expect(refused.headers.get("ratelimit-policy")).toBe('"api";q=3;w=60');
    const error = await errorOf(refused);
    expect(error.code).toBe("rate_limited");
    expect(error.message).toContain("Retry in 20 s");
    expect(error.details).toMatchObject({ policy: "api", limit: 3, windowSeconds: 60 });

    // A refused request costs nothing: still 20 s to wait, not 40.
    clock.advance(19_999);
    expect((await list(a)).status).toBe(429);
    clock.advance(1);
    const again = await list(a);
    expect(again.status).toBe(200);
    expect(again.headers.get("ratelimit")).toBe('"api";r=0;t=60');
  });

  it("limits POST /v1/research on its own quota too; a refused POST creates no record and no job", async () => {
    const clock = manualClock();
    const a = await api({ RATE_LIMIT_PER_MINUTE: "100", RATE_LIMIT_NEW_RESEARCH_PER_MINUTE: "2" }, clock.now);

    for (let i = 0; i < 2; i++) {
      const created = await postResearch(a, { query: `limited ${i}` });
      expect(created.status).toBe(202);
      expect(created.headers.get("ratelimit-policy")).toBe('"api";q=100;w=60, "new-research";q=2;w=60');
    }
    const before = await a.keys();
    const refused = await postResearch(a, { query: "one too many" }, { "Idempotency-Key": `k-${uid()}` });
    expect(refused.status).toBe(429);
    expect(refused.body.error.code).toBe("rate_limited");
    expect(refused.body.error.details.policy).toBe("new-research");
    expect(refused.body.error.message).toContain("POST /v1/research");
    expect(refused.headers.get("retry-after")).toBe("30");
    expect(refused.headers.get("ratelimit")).toBe('"api";r=98;t=2, "new-research";r=0;t=60');
    expect((await a.keys()).research.sort()).toEqual(before.research.sort());
    expect((await analysisCounts(a)).waiting).toBe(2);

    // Reads are not held back by the research quota, and the same path in another case or with a slash is.
    expect((await list(a)).status).toBe(200);
    const sneaky = await fetch(`${a.url}/V1/Research/`, { method: "POST", headers: { "content-type": "application/json" }, body: "{}" });
    expect(sneaky.status).toBe(429);

    clock.advance(30_000);
    expect((await postResearch(a, { query: "after the wait" })).status).toBe(202);
  });

  it("admits a burst of exactly the quota when the minute does not divide by it", async () => {
    const clock = manualClock();
    const a = await api({ RATE_LIMIT_PER_MINUTE: "7" }, clock.now);
    const statuses = [];
    for (let i = 0; i < 8; i++) statuses.push((await list(a)).status);
    expect(statuses).toEqual([200, 200, 200, 200, 200, 200, 200, 429]);
  });

  it("shares one limit between two api instances on the same Redis", async () => {
    const clock = manualClock();
    const env = { RATE_LIMIT_PER_MINUTE: "4", TRACELANE_RATE_LIMIT_PREFIX: `test-shared-${uid()}:ratelimit` };
    const [one, two] = [await api(env, clock.now), await api(env, clock.now)];

    const statuses = [];
    for (const target of [one, two, one, two, one, two]) statuses.push((await list(target)).status);
    expect(statuses).toEqual([200, 200, 200, 200, 429, 429]);
    clock.advance(15_000);
    expect((await list(two)).status).toBe(200);
    expect((await list(one)).status).toBe(429);
  });

  it("gives each API key its own budget, and names the key in the 429", async () => {
    const clock = manualClock();
    const [alice, bob] = [`alice-${uid()}`, `bob-${uid()}`];
    const a = await api({ RATE_LIMIT_PER_MINUTE: "2", API_KEYS: `${alice} alice member,${bob} bob member` }, clock.now);
    const as = (key: string) => fetch(`${a.url}/v1/research?limit=1`, { headers: { authorization: `Bearer ${key}` } });

    expect([(await as(alice)).status, (await as(alice)).status]).toEqual([200, 200]);
    const refused = await as(alice);
    expect(refused.status).toBe(429);
    expect((await errorOf(refused)).message).toContain("this API key may send 2 per minute");
    const other = await as(bob);
    expect(other.status).toBe(200);
    expect(other.headers.get("ratelimit")).toBe('"api";r=1;t=30');
    // A request without a key is refused by authentication before it counts against anyone.
    expect((await list(a)).status).toBe(401);
    expect((await as(bob)).status).toBe(200);
  });

  it("counts on Redis's clock by default", async () => {
    // 2 per minute: a third request within the 30 s after the first two is refused, whatever the machine's speed.
    const a = await api({ RATE_LIMIT_PER_MINUTE: "2" });
    expect((await list(a)).status).toBe(200);
    expect((await list(a)).status).toBe(200);
    const refused = await list(a);
    expect(refused.status).toBe(429);
    const retryAfter = Number(refused.headers.get("retry-after"));
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(30);
  });

  it("limits nothing outside /v1, and nothing at all with both limits 0", async () => {
    const limited = await api({ RATE_LIMIT_PER_MINUTE: "1" });
    expect((await list(limited)).status).toBe(200);
    for (let i = 0; i < 3; i++) expect((await fetch(`${limited.url}/healthz`)).headers.get("ratelimit")).toBeNull();

    const open = await api({ RATE_LIMIT_PER_MINUTE: "0", RATE_LIMIT_NEW_RESEARCH_PER_MINUTE: "0" });
    for (let i = 0; i < 5; i++) {
      const res = await list(open);
      expect(res.status).toBe(200);
      expect(res.headers.get("ratelimit")).toBeNull();
      expect(res.headers.get("ratelimit-policy")).toBeNull();
    }
  });

  it("fails open when Redis is unreachable: the route's own 503 unavailable answers, not a 429 or 500", async () => {
    const a = await startApi({ env: { RATE_LIMIT_PER_MINUTE: "5" }, storeRedisUrl: "redis://127.0.0.1:1", waitReady: false });
    started.push(a);
    const res = await list(a);
    expect(res.status).toBe(503);
    expect((await errorOf(res)).code).toBe("unavailable");
    expect(res.headers.get("ratelimit")).toBeNull();
  });

  it("counts rejections for operators in tracelane_http_rejections_total", async () => {
    const a = await api({ RATE_LIMIT_PER_MINUTE: "1" }, manualClock().now);
    await list(a);
    await list(a);
    await list(a);
    const metrics = await (await fetch(`${a.url}/metrics`)).text();
    expect(metrics).toMatch(/^tracelane_http_rejections_total\{tracelane_rejection_reason="rate_limited"\} 2$/m);
  });
});
