import { execFile } from "node:child_process";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { REPO_ROOT } from "@tracelane/testkit";

const run = promisify(execFile);
const SCRIPT = path.join(REPO_ROOT, "scripts/healthcheck.mjs");

/** Exit code of `node scripts/healthcheck.mjs [path]` with exactly `env` (plus PATH). */
async function healthcheck(env: Record<string, string>, pathArg?: string): Promise<number> {
  try {
    await run(process.execPath, [SCRIPT, ...(pathArg ? [pathArg] : [])], { env: { PATH: process.env.PATH ?? "", ...env } });
    return 0;
  } catch (err) {
    return (err as { code?: number }).code ?? -1;
  }
}

let server: Server;
let port: string;

beforeAll(async () => {
  server = createServer((req, res) => {
    res.writeHead(req.url === "/healthz" ? 200 : 503).end();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  port = String((server.address() as AddressInfo).port);
});

afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
});

describe("container healthcheck script", () => {
  it("is healthy on a 2xx from /healthz on PORT, and unhealthy on a 503 from the path it is given", async () => {
    expect(await healthcheck({ PORT: port })).toBe(0);
    expect(await healthcheck({ PORT: port }, "/readyz")).toBe(1);
  });

  it("prefers a worker's HEALTH_PORT over PORT, and HEALTHCHECK_URL over both", async () => {
    expect(await healthcheck({ HEALTH_PORT: port, PORT: "1" })).toBe(0);
    expect(await healthcheck({ HEALTHCHECK_URL: `http://127.0.0.1:${port}/healthz`, HEALTH_PORT: "1" })).toBe(0);
    expect(await healthcheck({ HEALTHCHECK_URL: `http://127.0.0.1:${port}/other`, HEALTH_PORT: port })).toBe(1);
  });

  it("is unhealthy when nothing listens", async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, "127.0.0.1", resolve));
    const free = String((closed.address() as AddressInfo).port);
    await new Promise((resolve) => closed.close(resolve));
    expect(await healthcheck({ PORT: free })).toBe(1);
  });
});
