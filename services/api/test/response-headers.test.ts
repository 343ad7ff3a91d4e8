import { Router } from "express";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startApi, type TestApi } from "./helpers.js";

let api: TestApi;

beforeAll(async () => {
  const traceRouter = Router();
  traceRouter.get("/v1/traces/:traceId", (req, res) => {
    if (req.params.traceId === "boom") throw new Error("redis password is hunter2");
    res.json({ traceId: req.params.traceId });
  });
  api = await startApi({ traceRouter });
});
afterAll(async () => {
  await api.close();
});

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe("response headers", () => {
  it.each(["/v1/traces/abc", "/v1/research/does-not-exist", "/healthz", "/no/such/route"])(
    "%s: nosniff, never cached, not frameable, no X-Powered-By, a request id",
    async (path) => {
      const res = await fetch(`${api.url}${path}`);
      expect(res.headers.get("x-content-type-options")).toBe("nosniff");
      expect(res.headers.get("cache-control")).toBe("no-store");
      expect(res.headers.get("x-frame-options")).toBe("DENY");
      expect(res.headers.get("x-powered-by")).toBeNull();
      expect(res.headers.get("x-request-id")).toMatch(UUID);
    },
  );

  it("keeps a caller's plain request id and replaces one that is not a plain token", async () => {
    const kept = await fetch(`${api.url}/healthz`, { headers: { "x-request-id": "lb-7f3e.42:a_b" } });
    expect(kept.headers.get("x-request-id")).toBe("lb-7f3e.42:a_b");
    for (const bad of ["<script>alert(1)</script>", "x".repeat(129), "two words"]) {
      const res = await fetch(`${api.url}/healthz`, { headers: { "x-request-id": bad } });
      expect(res.headers.get("x-request-id")).toMatch(UUID);
    }
  });

  it("answers an internal fault with its request id and nothing of the error", async () => {
    const res = await fetch(`${api.url}/v1/traces/boom`);
    expect(res.status).toBe(500);
    const id = res.headers.get("x-request-id")!;
    const body = (await res.json()) as { error: { code: string; message: string; details: { requestId: string } } };
    expect(body.error.code).toBe("internal_error");
    expect(body.error.details.requestId).toBe(id);
    expect(body.error.message).toContain(`report it with request id ${id}`);
    expect(JSON.stringify(body)).not.toMatch(/hunter2|redis/);
  });

  it("gives the console a strict Content-Security-Policy: own origin only, no inline script, no framing", async () => {
    const res = await fetch(`${api.url}/ui/`);
    const csp = res.headers.get("content-security-policy") ?? "";
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("connect-src 'self'");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).not.toContain("unsafe-inline");
    expect((await fetch(`${api.url}/v1/traces/abc`)).headers.get("content-security-policy")).toBeNull();
  });
});
