import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "@tracelane/testkit";
import { startApi, type TestApi } from "./helpers.js";

let api: TestApi;
let noRedis: TestApi;

beforeAll(async () => {
  api = await startApi();
  // A second app whose Redis is a closed port.
  noRedis = await startApi({
    storeRedisUrl: `redis://127.0.0.1:${await freePort()}`,
    queueRedisUrl: `redis://127.0.0.1:${await freePort()}`,
    waitReady: false,
  });
});
afterAll(async () => {
  await api.close();
  await noRedis.close();
});

describe("health endpoints", () => {
  it("/healthz answers 200 while the process is up, even without Redis", async () => {
    for (const a of [api, noRedis]) {
      const res = await fetch(`${a.url}/healthz`);
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({ status: "ok" });
    }
  });

  it("/readyz answers 200 when Redis answers PING", async () => {
    const res = await fetch(`${api.url}/readyz`);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ status: "ready", checks: { redis: "ok" } });
  });

  it("/readyz answers 503 with the reason when Redis is unreachable", async () => {
    const started = Date.now();
    const res = await fetch(`${noRedis.url}/readyz`);
    expect(res.status).toBe(503);
    const body = (await res.json()) as { status: string; reason: string };
    expect(body.status).toBe("unavailable");
    expect(body.reason).toMatch(/^redis: /);
    expect(Date.now() - started).toBeLessThan(2_000);
  });
});
