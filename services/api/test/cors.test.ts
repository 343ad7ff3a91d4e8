import { afterEach, describe, expect, it } from "vitest";
import { startApi, type TestApi } from "./helpers.js";
import { loadEnv } from "../src/env.js";

let api: TestApi | undefined;
afterEach(async () => {
  await api?.close();
  api = undefined;
});

const ALLOWED = "https://a.example";
const preflight = (a: TestApi, origin: string, path = "/v1/research") =>
  fetch(`${a.url}${path}`, {
    method: "OPTIONS",
    headers: {
      origin,
      "access-control-request-method": "POST",
      "access-control-request-headers": "authorization, content-type, idempotency-key",
    },
  });

const corsHeaders = (res: Response) => [...res.headers.keys()].filter((k) => k.startsWith("access-control-"));

describe("CORS (CORS_ORIGINS)", () => {
  it("sends no Access-Control-* header by default, to any origin", async () => {
    api = await startApi();
    const res = await fetch(`${api.url}/v1/research`, { headers: { origin: ALLOWED } });
    expect(res.status).toBe(200);
    expect(corsHeaders(res)).toEqual([]);
    expect(corsHeaders(await preflight(api, ALLOWED))).toEqual([]);
  });

  it("allows exactly the listed origins: preflight with methods, headers and max age; answers with the origin and Vary", async () => {
    api = await startApi({ env: { CORS_ORIGINS: `${ALLOWED}, https://b.example:8443/` } });

    const pre = await preflight(api, ALLOWED);
    expect(pre.status).toBe(204);
    expect(pre.headers.get("access-control-allow-origin")).toBe(ALLOWED);
    expect(pre.headers.get("access-control-allow-methods")).toBe("GET,HEAD,POST,DELETE");
    const allowedHeaders = pre.headers.get("access-control-allow-headers")!.toLowerCase().split(",");
    expect(allowedHeaders).toEqual(expect.arrayContaining(["authorization", "content-type", "idempotency-key", "last-event-id"]));
    expect(pre.headers.get("access-control-max-age")).toBe("600");
    expect(pre.headers.get("access-control-allow-credentials")).toBeNull();
    expect(pre.headers.get("vary")).toMatch(/Origin/);

    const get = await fetch(`${api.url}/v1/research`, { headers: { origin: "https://b.example:8443" } });
    expect(get.status).toBe(200);
    expect(get.headers.get("access-control-allow-origin")).toBe("https://b.example:8443");
    expect(get.headers.get("access-control-expose-headers")).toContain("Retry-After");
    expect(get.headers.get("vary")).toMatch(/Origin/);

    // An error answer is readable by the page too.
    const missing = await fetch(`${api.url}/v1/research/${"0".repeat(32)}`, { headers: { origin: ALLOWED } });
    expect(missing.status).toBe(404);
    expect(missing.headers.get("access-control-allow-origin")).toBe(ALLOWED);
  });

  it("gives any other origin no CORS header, only Vary: Origin", async () => {
    api = await startApi({ env: { CORS_ORIGINS: ALLOWED } });
    for (const origin of ["https://evil.example", "https://a.example.evil.example", "http://a.example", "null"]) {
      const get = await fetch(`${api.url}/v1/research`, { headers: { origin } });
      expect(corsHeaders(get)).toEqual([]);
      expect(get.headers.get("vary")).toMatch(/Origin/);
      const pre = await preflight(api, origin);
      expect(pre.status).not.toBe(204);
      expect(corsHeaders(pre)).toEqual([]);
    }
  });

  it("refuses at boot an entry that is not an origin, naming CORS_ORIGINS", () => {
    for (const bad of ["*", "https://a.example/app", "a.example", "ftp://a.example"]) {
      expect(() => loadEnv({ CORS_ORIGINS: bad })).toThrow(/CORS_ORIGINS: .*is not an origin/);
    }
    expect(loadEnv({ CORS_ORIGINS: "https://A.example, http://localhost:5173" }).CORS_ORIGINS).toEqual([
      "https://a.example",
      "http://localhost:5173",
    ]);
  });
});
