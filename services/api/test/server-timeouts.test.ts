import { connect } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadEnv } from "../src/env.js";
import { analysisCounts, postResearch, startApi, type TestApi } from "./helpers.js";

const HEADERS_TIMEOUT_MS = 500;
const REQUEST_TIMEOUT_MS = 1_000;
/** Node checks the timeouts every 125 ms here (a quarter of the shorter one); generous room for a loaded machine. */
const SLACK_MS = 4_000;

let api: TestApi;
beforeAll(async () => {
  api = await startApi({
    env: {
      HTTP_HEADERS_TIMEOUT_MS: String(HEADERS_TIMEOUT_MS),
      HTTP_REQUEST_TIMEOUT_MS: String(REQUEST_TIMEOUT_MS),
      SSE_HEARTBEAT_MS: "1000",
    },
  });
});
afterAll(async () => {
  await api.close();
});

/**
 * A raw client that sends `head`, then one `drip` every 100 ms until the server closes the connection;
 * resolves with what the server sent and how long the connection lived.
 */
function dribble(head: string, drip: string): Promise<{ received: string; lifetimeMs: number }> {
  const { port } = new URL(api.url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), "127.0.0.1");
    let received = "";
    let timer: NodeJS.Timeout | undefined;
    const start = performance.now();
    socket.on("connect", () => {
      socket.write(head);
      timer = setInterval(() => socket.writable && socket.write(drip), 100);
    });
    socket.on("data", (chunk) => (received += chunk.toString("latin1")));
    socket.on("error", () => undefined); // a reset after the 408 is a close too
    socket.on("close", () => {
      clearInterval(timer);
      resolve({ received, lifetimeMs: performance.now() - start });
    });
    setTimeout(() => {
      socket.destroy();
      reject(new Error(`the server kept a dribbling connection open for 10 s (received ${JSON.stringify(received)})`));
    }, 10_000).unref();
  });
}

describe("slow clients (HTTP_HEADERS_TIMEOUT_MS, HTTP_REQUEST_TIMEOUT_MS)", () => {
  it("answers 408 and closes a connection whose headers never finish, while a normal request is served", async () => {
    const slow = dribble("GET /healthz HTTP/1.1\r\nHost: api\r\n", "X-Slow: 1\r\n");
    const normal = await fetch(`${api.url}/healthz`);
    expect(normal.status).toBe(200);

    const { received, lifetimeMs } = await slow;
    expect(received).toMatch(/^HTTP\/1\.1 408 /);
    expect(lifetimeMs).toBeGreaterThanOrEqual(HEADERS_TIMEOUT_MS - 50);
    expect(lifetimeMs).toBeLessThan(HEADERS_TIMEOUT_MS + SLACK_MS);
  });

  it("answers 408 and closes a connection whose body arrives a byte at a time, creating nothing", async () => {
    const before = (await analysisCounts(api)).waiting ?? 0;
    const head = "POST /v1/research HTTP/1.1\r\nHost: api\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n{";
    const slow = dribble(head, " ");
    expect((await postResearch(api, { query: "a normal one" })).status).toBe(202);

    const { received, lifetimeMs } = await slow;
    expect(received).toMatch(/^HTTP\/1\.1 408 /);
    expect(lifetimeMs).toBeGreaterThanOrEqual(REQUEST_TIMEOUT_MS - 50);
    expect(lifetimeMs).toBeLessThan(REQUEST_TIMEOUT_MS + SLACK_MS);
    // Only the normal POST's job was enqueued.
    expect((await analysisCounts(api)).waiting).toBe(before + 1);

    const metrics = await (await fetch(`${api.url}/metrics`)).text();
    expect(metrics).toMatch(/^tracelane_http_rejections_total\{tracelane_rejection_reason="request_timeout"\} [12]$/m);
  });

  it("keeps an event stream open past HTTP_REQUEST_TIMEOUT_MS: the timeout bounds receiving the request, not the answer", async () => {
    const { body } = await postResearch(api, { query: "a long watch" });
    const res = await fetch(`${api.url}/v1/research/${body.id}/events`);
    expect(res.status).toBe(200);
    const opened = performance.now();
    const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
    let text = "";
    // Two heartbeats (one a second) put the stream past the request timeout and the check after it.
    while ((text.match(/: heartbeat/g) ?? []).length < 2) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`the stream ended after ${Math.round(performance.now() - opened)} ms: ${text}`);
      text += value;
    }
    expect(performance.now() - opened).toBeGreaterThan(REQUEST_TIMEOUT_MS + 250);

    // Still live: a change now arrives on it, and its final event ends it.
    expect((await fetch(`${api.url}/v1/research/${body.id}`, { method: "DELETE" })).status).toBe(200);
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      text += value;
    }
    expect(text).toContain("event: research.cancelled");
  });
});

describe("timeout settings", () => {
  it("refuses at boot a head timeout longer than the request timeout, naming the variable", () => {
    expect(() => loadEnv({ HTTP_HEADERS_TIMEOUT_MS: "20000", HTTP_REQUEST_TIMEOUT_MS: "10000" })).toThrow(
      /HTTP_HEADERS_TIMEOUT_MS: must not be longer than HTTP_REQUEST_TIMEOUT_MS \(10000\)/,
    );
    expect(loadEnv({ HTTP_HEADERS_TIMEOUT_MS: "20000", HTTP_REQUEST_TIMEOUT_MS: "0" }).HTTP_HEADERS_TIMEOUT_MS).toBe(20_000);
  });
});
