import { fork } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createKeepAliveFetch } from "../src/keep-alive-fetch.js";

interface Seen {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: string;
  remotePort: number;
}

describe("createKeepAliveFetch", () => {
  const seen: Seen[] = [];
  let server: http.Server;
  let base: string;
  let hangClosed!: () => void;
  const hangClosedPromise = new Promise<void>((r) => (hangClosed = r));

  beforeAll(async () => {
    server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        seen.push({
          method: req.method!,
          url: req.url!,
          headers: req.headers,
          body: Buffer.concat(chunks).toString(),
          remotePort: req.socket.remotePort!,
        });
        switch (req.url) {
          case "/echo":
            res.setHeader("content-type", "application/json");
            res.setHeader("x-request-id", "req_1");
            res.end(JSON.stringify({ got: JSON.parse(Buffer.concat(chunks).toString() || "null") }));
            return;
          case "/rate-limited":
            res.writeHead(429, { "retry-after": "2", "content-type": "application/json" });
            res.end('{"error":{"message":"slow down"}}');
            return;
          case "/gzip":
            res.writeHead(200, { "content-encoding": "gzip", "content-type": "text/plain" });
            res.end(gzipSync("compressed hello"));
            return;
          case "/empty":
            res.writeHead(204);
            res.end();
            return;
          case "/hang":
            // Never answers; tells the test when the client has dropped the connection.
            req.socket.once("close", () => hangClosed());
            return;
          default:
            res.writeHead(404);
            res.end("not found");
        }
      });
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });

  it("sends method, headers and body, returns status, headers and body, and reuses connections", async () => {
    const f = createKeepAliveFetch();
    const first = await f(`${base}/echo`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: "Bearer k" },
      body: JSON.stringify({ q: "é" }),
    });
    const second = await f(new URL(`${base}/echo`), {
      method: "POST",
      headers: new Headers({ "content-type": "application/json" }),
      body: new TextEncoder().encode('{"q":2}'),
    });

    expect(first.status).toBe(200);
    expect(first.ok).toBe(true);
    expect(first.headers.get("x-request-id")).toBe("req_1");
    expect(first.url).toBe(`${base}/echo`);
    expect(await first.json()).toEqual({ got: { q: "é" } });
    expect(await second.json()).toEqual({ got: { q: 2 } });

    const [a, b] = seen.slice(-2);
    expect(a).toMatchObject({ method: "POST", url: "/echo" });
    expect(a!.headers.authorization).toBe("Bearer k");
    expect(a!.headers["content-length"]).toBe(String(Buffer.byteLength(JSON.stringify({ q: "é" }))));
    expect(b!.headers["accept-encoding"]).toBe("identity");

    // Ten calls one after another ride on kept-alive connections (a pool may open a second one
    // while the first is still finishing its previous response).
    const before = seen.length;
    for (let i = 0; i < 10; i++) await (await f(`${base}/echo`, { method: "POST", body: "{}" })).text();
    expect(new Set(seen.slice(before).map((s) => s.remotePort)).size).toBeLessThanOrEqual(2);
    await f.close();
  });

  it("resolves with error statuses and their headers, as fetch does", async () => {
    const res = await createKeepAliveFetch()(`${base}/rate-limited`, { method: "POST", body: "{}" });
    expect(res.status).toBe(429);
    expect(res.ok).toBe(false);
    expect(res.headers.get("retry-after")).toBe("2");
    expect(await res.json()).toEqual({ error: { message: "slow down" } });
  });

  it("decodes a compressed body and drops the encoding headers", async () => {
    const res = await createKeepAliveFetch()(`${base}/gzip`);
    expect(await res.text()).toBe("compressed hello");
    expect(res.headers.get("content-encoding")).toBeNull();
  });

  it("gives a null body for 204", async () => {
    const res = await createKeepAliveFetch()(`${base}/empty`, { method: "DELETE" });
    expect(res.status).toBe(204);
    expect(res.body).toBeNull();
  });

  it("rejects with an AbortError when the signal aborts mid-request, and closes the connection", async () => {
    const before = seen.length;
    const controller = new AbortController();
    const pending = createKeepAliveFetch()(`${base}/hang`, { method: "POST", body: "{}", signal: controller.signal });
    await expect.poll(() => seen.length).toBe(before + 1);
    controller.abort();
    await expect(pending).rejects.toMatchObject({ name: "AbortError" });
    await hangClosedPromise;
    // An already-aborted signal never sends anything.
    const again = new AbortController();
    again.abort();
    await expect(createKeepAliveFetch()(`${base}/echo`, { signal: again.signal })).rejects.toMatchObject({ name: "AbortError" });
    expect(seen.length).toBe(before + 1);
  });

  it("rejects with TypeError('fetch failed') carrying the cause when nothing listens", async () => {
    const probe = http.createServer();
    await new Promise<void>((r) => probe.listen(0, "127.0.0.1", r));
    const port = (probe.address() as AddressInfo).port;
    await new Promise((r) => probe.close(r));
    const err = await createKeepAliveFetch()(`http://127.0.0.1:${port}/x`).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TypeError);
    expect((err as TypeError).message).toBe("fetch failed");
    expect(((err as TypeError).cause as NodeJS.ErrnoException).code).toBe("ECONNREFUSED");
  });

  it("rejects, as fetch does, a URL or header it cannot send, instead of throwing at the call", async () => {
    const before = seen.length;
    const f = createKeepAliveFetch();
    let call: Promise<Response> | undefined;
    expect(() => (call = f("not a url"))).not.toThrow();
    await expect(call).rejects.toBeInstanceOf(TypeError);
    await expect(f(`${base}/echo`, { headers: { "bad header": "x" } })).rejects.toBeInstanceOf(TypeError);
    expect(seen.length).toBe(before);
  });

  it("never sends a request on a connection the server has closed for being idle, even from a busy process", async () => {
    // node:http's Agent on Node 20 ignores the server's `Keep-Alive: timeout=N` hint, keeps idle
    // sockets past the server's timeout, and a client busy at the moment the server closes them
    // writes its next requests onto dead sockets: ECONNRESET before the server sees anything.
    const dir = mkdtempSync(join(tmpdir(), "keep-alive-"));
    const countsFile = join(dir, "counts");
    writeFileSync(countsFile, "0 0");
    const child = fork(fileURLToPath(new URL("./fixtures/idle-closing-server.mjs", import.meta.url)), {
      env: { ...process.env, KEEP_ALIVE_MS: "2000", COUNTS_FILE: countsFile },
      stdio: ["ignore", "inherit", "inherit", "ipc"],
    });
    const f = createKeepAliveFetch();
    try {
      const [port] = (await once(child, "message")) as [number];
      const burst = async () => {
        const results = await Promise.allSettled(
          Array.from({ length: 16 }, () =>
            f(`http://127.0.0.1:${port}/v1/chat/completions`, { method: "POST", body: "{}" }).then((r) => r.json()),
          ),
        );
        return results.flatMap((r) => (r.status === "rejected" ? [String((r.reason as Error).cause ?? r.reason)] : []));
      };
      expect(await burst()).toEqual([]);
      // Idle for less than the server's timeout (2 s, plus the 1 s grace Node's server adds)...
      await sleep(2_000);
      // ...then busy, as a worker at saturation, while the server closes whatever is still idle: the
      // FINs sit unread until the next burst has been written.
      const deadline = Date.now() + 10_000;
      for (;;) {
        const [opened, closed] = readFileSync(countsFile, "utf8").split(" ").map(Number);
        if (closed === opened) break;
        if (Date.now() > deadline) throw new Error(`the server closed ${closed} of ${opened} idle connections within 10 s`);
      }
      expect(await burst()).toEqual([]);
    } finally {
      await f.close();
      const exited = once(child, "exit");
      child.kill();
      await exited;
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("hands what it does not handle (a Request object) to the fallback", async () => {
    const calls: string[] = [];
    const f = createKeepAliveFetch({
      fallback: (async (input: string | URL | Request) => {
        calls.push(input instanceof Request ? input.url : String(input));
        return new Response("from fallback");
      }) as typeof fetch,
    });
    const res = await f(new Request(`${base}/echo`, { method: "POST", body: "{}" }));
    expect(await res.text()).toBe("from fallback");
    expect(calls).toEqual([`${base}/echo`]);
  });
});
