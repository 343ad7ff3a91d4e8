import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import express from "express";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CONSOLE_BASE, createConsoleRouter } from "@tracelane/console";

const built = mkdtempSync(path.join(tmpdir(), "console-built-"));
const unbuilt = mkdtempSync(path.join(tmpdir(), "console-unbuilt-"));
let server: Server;
let url: string;

beforeAll(async () => {
  mkdirSync(path.join(built, "assets"));
  writeFileSync(path.join(built, "index.html"), "<!doctype html><title>console</title>");
  writeFileSync(path.join(built, "assets/app.js"), "console.log(1)");
  const app = express();
  app.use(CONSOLE_BASE, createConsoleRouter({ dir: built }));
  app.use("/unbuilt", createConsoleRouter({ dir: unbuilt }));
  server = await new Promise<Server>((resolve) => {
    const s = app.listen(0, "127.0.0.1", () => resolve(s));
  });
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise((r) => server.close(r));
  rmSync(built, { recursive: true, force: true });
  rmSync(unbuilt, { recursive: true, force: true });
});

describe("createConsoleRouter", () => {
  it("answers every client-side route, deep links included, with the app", async () => {
    for (const p of ["/ui", "/ui/", "/ui/costs", "/ui/traces/0af7651916cd43dd8448eb211c80319c"]) {
      const res = await fetch(`${url}${p}`);
      expect(res.status, p).toBe(200);
      expect(res.headers.get("content-type")).toContain("text/html");
      expect(await res.text()).toContain("<title>console</title>");
    }
  });

  it("serves assets, and a missing asset is a 404 rather than the app", async () => {
    const js = await fetch(`${url}/ui/assets/app.js`);
    expect(js.status).toBe(200);
    expect(js.headers.get("content-type")).toContain("javascript");
    expect(js.headers.get("cache-control")).toBe("no-cache");
    const missing = await fetch(`${url}/ui/assets/nope.js`);
    expect(missing.status).toBe(404);
    expect(await missing.text()).toContain("No console asset at /ui/assets/nope.js");
  });

  it("says how to build the console when it was never built", async () => {
    const res = await fetch(`${url}/unbuilt/traces/x`);
    expect(res.status).toBe(503);
    expect(await res.text()).toContain("The console is not built");
  });
});
