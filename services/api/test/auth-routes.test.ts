import { randomBytes } from "node:crypto";
import type { Express } from "express";
import type { RedisClient } from "@tracelane/runtime";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { createRedis, waitForRedis } from "@tracelane/runtime";
import { createLogger } from "@tracelane/tracing";
import { composeApi, type Api } from "../src/api.js";
import { loadEnv } from "../src/env.js";
import { uid } from "./helpers.js";

/**
 * With API keys configured, every route the app serves answers 401 without a key and with an
 * unknown one, except an explicit list of public routes. The routes are enumerated from the
 * Express router itself (nested routers, Bull Board's own app, the console's mount), so a route
 * added anywhere without auth fails this test.
 */

const keys = { member: `member-${randomBytes(12).toString("hex")}`, admin: `admin-${randomBytes(12).toString("hex")}` };
/** What anyone may read: liveness/readiness, the API's own documentation, the redirect to /ui, Prometheus. */
const PUBLIC = new Set(["GET /healthz", "GET /readyz", "GET /openapi.json", "GET /docs", "GET /", "GET /metrics"]);

interface Probe {
  /** "GET /v1/research/:id" as the router has it. */
  route: string;
  method: string;
  /** A concrete path that reaches it. */
  path: string;
}

type Json = any;

/** A path that matches an Express 5 (path-to-regexp 8) pattern: params filled in, optional groups taken. */
function samplePath(pattern: unknown): string {
  if (pattern instanceof RegExp) return "/sample";
  return String(pattern)
    .replace(/[{}]/g, "")
    .replace(/:(\w+)/g, (_m, name: string) => `sample-${name}`)
    .replace(/\*(\w+)/g, "sample/rest");
}

/** Every route and mount of the app, recursively, each with a concrete path. */
function enumerate(app: Express): Probe[] {
  const probes: Probe[] = [];
  const walk = (stack: Json[], prefix: string) => {
    for (const layer of stack) {
      const at = layer.slash || layer.rawPath === undefined ? "" : samplePath(layer.rawPath);
      if (layer.route) {
        // A route may have several paths (Bull Board's page: "/", "/queue/:queueName"...): each is probed.
        const paths: unknown[] = Array.isArray(layer.route.path) ? layer.route.path : [layer.route.path];
        for (const method of Object.keys(layer.route.methods).filter((m) => m !== "_all")) {
          for (const path of paths) {
            probes.push({
              route: `${method.toUpperCase()} ${prefix}${String(path)}`,
              method: method.toUpperCase(),
              path: `${prefix}${samplePath(path)}`,
            });
          }
        }
        continue;
      }
      // A router or a whole app (Bull Board is an Express app of its own).
      const nested: Json[] | undefined = layer.handle?.stack ?? layer.handle?.router?.stack;
      if (nested) walk(nested, `${prefix}${at}`);
      // A mounted middleware (express.static, a router's fallthrough): probe its mount point too.
      if (at !== "")
        probes.push({ route: `GET ${prefix}${String(layer.rawPath)} (mount)`, method: "GET", path: `${prefix}${at}/sample.js` });
    }
  };
  walk((app as Json).router.stack, "");
  return probes;
}

let connections: RedisClient[];
let api: Api;
let url: string;

beforeAll(async () => {
  const redisUrl = inject("redisUrl");
  connections = [createRedis(redisUrl, "producer"), createRedis(redisUrl, "producer")];
  // Fail-fast connections, as the api's own: a request before they are ready would be a 503.
  await Promise.all(connections.map((c) => waitForRedis(c)));
  api = composeApi({
    env: loadEnv({
      TRACELANE_QUEUE_PREFIX: `test-auth-${uid()}`,
      TRACELANE_RESEARCH_PREFIX: `test-auth-${uid()}:research`,
      API_KEYS: `${keys.member} someone member,${keys.admin} operator admin`,
      RATE_LIMIT_PER_MINUTE: "0",
      RATE_LIMIT_NEW_RESEARCH_PER_MINUTE: "0",
    }),
    redis: connections[0]!,
    queueRedis: connections[1]!,
    logger: createLogger("api-test", { level: "silent" }),
  });
  url = `http://127.0.0.1:${await api.start({ port: 0, host: "127.0.0.1" })}`;
});
afterAll(async () => {
  await api?.close();
  connections.forEach((c) => c.disconnect());
});

const send = (probe: Pick<Probe, "method" | "path">, authorization?: string) =>
  fetch(`${url}${probe.path}`, {
    method: probe.method,
    redirect: "manual",
    headers: {
      ...(authorization ? { authorization } : {}),
      ...(probe.method === "POST" || probe.method === "PUT" ? { "content-type": "application/json" } : {}),
    },
    ...(probe.method === "POST" || probe.method === "PUT" ? { body: "{}" } : {}),
  });

describe("every route needs a key", () => {
  it("finds the app's routes: research, traces, Bull Board's api, the console's mount, and the public ones", () => {
    const routes = enumerate(api.app).map((p) => p.route);
    for (const expected of [
      "POST /v1/research",
      "GET /v1/research/:id/events",
      "DELETE /v1/research/:id",
      "GET /v1/traces/:traceId/replay",
      "GET /v1/stats/costs",
      "GET /admin/queues/api/queues",
      "GET /admin/queues/queue/:queueName",
      "GET /ui (mount)",
      ...PUBLIC,
    ]) {
      expect(routes, expected).toContainEqual(expect.stringContaining(expected));
    }
    expect(routes.length).toBeGreaterThan(25);
  });

  it("answers 401 without a key and with an unknown one on every route but the public ones", async () => {
    const open: string[] = [];
    for (const probe of enumerate(api.app)) {
      const isPublic = PUBLIC.has(probe.route);
      for (const authorization of [undefined, "Bearer not-a-configured-key-000000", `Basic ${btoa("user:not-a-configured-key-0000")}`]) {
        const res = await send(probe, authorization);
        await res.arrayBuffer();
        if (isPublic !== (res.status !== 401)) open.push(`${probe.route} (${probe.path}) ${authorization ?? "no key"}: ${res.status}`);
      }
    }
    // Public routes must not 401; everything else must.
    expect(open).toEqual([]);
  });

  it("says how to send the key, in the api's error shape, with a Bearer challenge (and Basic for the browser pages)", async () => {
    const none = await send({ method: "GET", path: "/v1/research" });
    expect(none.status).toBe(401);
    expect(none.headers.get("www-authenticate")).toBe('Bearer realm="tracelane"');
    const body = (await none.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe("unauthorized");
    expect(body.error.message).toContain("Authorization: Bearer <key>");

    const unknown = await send({ method: "GET", path: "/v1/research" }, "Bearer not-a-configured-key-000000");
    expect(unknown.headers.get("www-authenticate")).toBe('Bearer realm="tracelane", error="invalid_token"');
    const unknownBody = (await unknown.json()) as { error: { code: string; message: string } };
    expect(unknownBody.error.code).toBe("invalid_api_key");
    expect(JSON.stringify(unknownBody)).not.toContain("not-a-configured-key");

    for (const path of ["/ui/", "/ui/traces/abc", "/admin/queues"]) {
      const page = await send({ method: "GET", path });
      expect(page.status, path).toBe(401);
      expect(page.headers.get("www-authenticate"), path).toMatch(/^Basic realm="tracelane", charset="UTF-8", Bearer realm="tracelane"$/);
    }
  });

  it("takes the key as Bearer or as a Basic password, and a malformed header is a 401 that says why", async () => {
    expect((await send({ method: "GET", path: "/v1/research" }, `Bearer ${keys.member}`)).status).toBe(200);
    expect((await send({ method: "GET", path: "/ui/" }, `Basic ${btoa(`anyone:${keys.member}`)}`)).status).not.toBe(401);
    const odd = await send({ method: "GET", path: "/v1/research" }, `Token ${keys.member}`);
    expect(odd.status).toBe(401);
    expect(((await odd.json()) as { error: { message: string } }).error.message).toMatch(/must be: Bearer <api key>/);
  });

  it("keeps Bull Board for admin keys: a member key gets 403", async () => {
    const member = await send({ method: "GET", path: "/admin/queues/api/queues" }, `Bearer ${keys.member}`);
    expect(member.status).toBe(403);
    expect(((await member.json()) as { error: { code: string } }).error.code).toBe("forbidden");
    const admin = await send({ method: "GET", path: "/admin/queues/api/queues" }, `Basic ${btoa(`ops:${keys.admin}`)}`);
    expect(admin.status).toBe(200);
  });

  it("answers 401 for a route that does not exist rather than telling a stranger which ones do", async () => {
    expect((await send({ method: "GET", path: "/v1/nothing-here" })).status).toBe(401);
    expect((await send({ method: "GET", path: "/v1/nothing-here" }, `Bearer ${keys.member}`)).status).toBe(404);
  });
});

describe("the OpenAPI document", () => {
  it("says every /v1 operation takes the Bearer key and may answer 401; health and docs do not", async () => {
    const doc = (await (await send({ method: "GET", path: "/openapi.json" })).json()) as Json;
    expect(doc.components.securitySchemes.apiKey).toMatchObject({ type: "http", scheme: "bearer" });
    const operations = Object.entries(doc.paths as Record<string, Record<string, Json>>).flatMap(([p, ops]) =>
      Object.entries(ops).map(([method, op]) => ({ route: `${method.toUpperCase()} ${p}`, op })),
    );
    for (const { route, op } of operations) {
      const keyed = route.split(" ")[1]!.startsWith("/v1/");
      expect(op.security, route).toEqual(keyed ? [{ apiKey: [] }] : undefined);
      expect(Object.keys(op.responses).includes("401"), route).toBe(keyed);
    }
    expect(Object.keys(doc.paths["/v1/traces"].get.responses)).toContain("403");
  });
});

describe("METRICS_REQUIRE_KEY", () => {
  it("keys /metrics when true (open by default, see the public list above)", async () => {
    const redisUrl = inject("redisUrl");
    const conns = [createRedis(redisUrl, "producer"), createRedis(redisUrl, "producer")];
    await Promise.all(conns.map((c) => waitForRedis(c)));
    const keyed = composeApi({
      env: loadEnv({
        TRACELANE_QUEUE_PREFIX: `test-auth-${uid()}`,
        TRACELANE_RESEARCH_PREFIX: `test-auth-${uid()}:research`,
        API_KEYS: keys.member,
        METRICS_REQUIRE_KEY: "true",
      }),
      redis: conns[0]!,
      queueRedis: conns[1]!,
      logger: createLogger("api-test", { level: "silent" }),
    });
    try {
      const base = `http://127.0.0.1:${await keyed.start({ port: 0, host: "127.0.0.1" })}`;
      expect((await fetch(`${base}/metrics`)).status).toBe(401);
      const withKey = await fetch(`${base}/metrics`, { headers: { authorization: `Bearer ${keys.member}` } });
      expect(withKey.status).toBe(200);
      expect(await withKey.text()).toContain("# TYPE");
      expect((await fetch(`${base}/healthz`)).status).toBe(200);
    } finally {
      await keyed.close();
      conns.forEach((c) => c.disconnect());
    }
  });
});
