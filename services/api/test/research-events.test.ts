import { createConnection, createServer, type AddressInfo, type Socket } from "node:net";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { waitFor } from "@tracelane/testkit";
import { postResearch, readSse, startApi, uid, type SseMessage, type TestApi } from "./helpers.js";

let api: TestApi;

beforeAll(async () => {
  api = await startApi({ env: { SSE_POLL_MS: "20", SSE_HEARTBEAT_MS: "1000" } });
});
afterAll(async () => {
  await api.close();
});

const usage = { inputTokens: 5, outputTokens: 7 };
const openEvents = (id: string, headers: Record<string, string> = {}, signal?: AbortSignal) =>
  fetch(`${api.url}/v1/research/${id}/events`, { headers: { accept: "text/event-stream", ...headers }, ...(signal ? { signal } : {}) });
const types = (messages: SseMessage[]) => messages.map((m) => m.event);

describe("GET /v1/research/:id/events", () => {
  it("replays past transitions, follows new ones in order and closes after research.completed", async () => {
    const { body } = await postResearch(api, { query: "stream me" });
    const id: string = body.id;
    await api.store.stageStarted(id, "analysis", { model: "m", attempt: 1, queueWaitMs: 1 });

    const res = await openEvents(id);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("text/event-stream; charset=utf-8");
    expect(res.headers.get("cache-control")).toBe("no-cache, no-transform");
    const reading = readSse(res);

    // Transitions after the client connected arrive through polling.
    await api.store.stageCompleted(id, "analysis", { output: "a", model: "m", usage, costUsd: 0.01, latencyMs: 3, next: "factcheck" });
    await api.store.stageStarted(id, "factcheck", { model: "m", attempt: 1, queueWaitMs: 1 });
    await api.store.stageCompleted(id, "factcheck", { output: "f", model: "m", usage, costUsd: 0.01, latencyMs: 3, next: "synthesis" });
    await api.store.stageStarted(id, "synthesis", { model: "m", attempt: 1, queueWaitMs: 1 });
    await api.store.stageCompleted(id, "synthesis", { output: "s", model: "m", usage, costUsd: 0.01, latencyMs: 3, next: undefined });
    await api.store.completed(id);

    const { messages, ended } = await reading;
    expect(ended).toBe(true);
    expect(types(messages)).toEqual([
      "research.queued",
      "stage.started",
      "stage.completed",
      "stage.started",
      "stage.completed",
      "stage.started",
      "stage.completed",
      "research.completed",
    ]);
    const stored = await api.store.events(id);
    expect(messages.map((m) => m.id)).toEqual(stored.map((e) => e.id));
    const first = JSON.parse(messages[1]!.data!);
    expect(first).toMatchObject({ id: stored[1]!.id, type: "stage.started", researchId: id, status: "running", stage: "analysis" });
    await waitFor(() => api.streams.size === 0, { what: "the stream to unregister" });
  });

  it("resumes after Last-Event-ID and ends at once when the research already finished", async () => {
    const { body } = await postResearch(api, { query: "resume me" });
    const id: string = body.id;
    await api.store.stageStarted(id, "analysis", { model: "m", attempt: 1, queueWaitMs: 1 });
    await api.store.failed(id, { stage: "analysis", type: "provider_error", message: "model unavailable" });
    const stored = await api.store.events(id);

    const resumed = await readSse(await openEvents(id, { "last-event-id": stored[0]!.id }));
    expect(resumed.ended).toBe(true);
    expect(types(resumed.messages)).toEqual(["stage.started", "research.failed"]);
    const viaQuery = await readSse(await fetch(`${api.url}/v1/research/${id}/events?lastEventId=${stored[1]!.id}`));
    expect(types(viaQuery.messages)).toEqual(["research.failed"]);

    const afterFinal = await readSse(await openEvents(id, { "last-event-id": stored.at(-1)!.id }));
    expect(afterFinal.ended).toBe(true);
    expect(afterFinal.messages).toEqual([]);
  });

  it("sends research.cancelled and closes when the research is cancelled through DELETE", async () => {
    const { body } = await postResearch(api, { query: "cancel while watching" });
    const reading = readSse(await openEvents(body.id));
    await waitFor(() => api.streams.size > 0, { what: "the stream to open" });
    const del = await fetch(`${api.url}/v1/research/${body.id}`, { method: "DELETE" });
    expect(del.status).toBe(200);
    const { messages, ended } = await reading;
    expect(ended).toBe(true);
    expect(types(messages)).toEqual(["research.queued", "research.cancelled"]);
  });

  it("sends heartbeat comments while nothing happens", async () => {
    const { body } = await postResearch(api, { query: "quiet" });
    const { messages, comments } = await readSse(await openEvents(body.id), {
      until: (_m, c) => c.includes("heartbeat"),
      timeoutMs: 5_000,
    });
    expect(types(messages)).toEqual(["research.queued"]);
    expect(comments).toContain("heartbeat");
    await api.store.cancel(body.id);
  });

  it("stops polling when the client disconnects", async () => {
    const { body } = await postResearch(api, { query: "leave early" });
    const abort = new AbortController();
    const res = await openEvents(body.id, {}, abort.signal);
    await waitFor(() => api.streams.size === 1, { what: "the stream to open" });
    abort.abort();
    await res.body?.cancel().catch(() => undefined);
    await waitFor(() => api.streams.size === 0, { what: "the server to notice the disconnect" });
    await api.store.cancel(body.id);
  });

  it("ends open streams on shutdown (closeAll) so clients reconnect with Last-Event-ID", async () => {
    const { body } = await postResearch(api, { query: "shutdown" });
    const reading = readSse(await openEvents(body.id));
    await waitFor(() => api.streams.size === 1, { what: "the stream to open" });
    api.streams.closeAll();
    const { messages, ended } = await reading;
    expect(ended).toBe(true);
    expect(types(messages)).toEqual(["research.queued"]);
    await api.store.cancel(body.id);
  });

  it("sends the replay before ending a stream that shutdown closed before its first read", async () => {
    // The store's connection goes through a proxy that holds the stream's first XRANGE, so closeAll()
    // lands exactly between the stream registering and its replay read returning.
    const proxy = await redisHoldingProxy(inject("redisUrl"), /^\*\d+\r\n\$6\r\nxrange\r\n/i);
    const held = await startApi({ storeRedisUrl: proxy.url, env: { SSE_POLL_MS: "20", SSE_HEARTBEAT_MS: "1000" } });
    try {
      const { body } = await postResearch(held, { query: "shutdown during replay" });
      proxy.hold();
      const reading = readSse(await fetch(`${held.url}/v1/research/${body.id}/events`));
      await proxy.holding;
      expect(held.streams.size).toBe(1);
      held.streams.closeAll();
      proxy.release();
      const { messages, ended } = await reading;
      expect(ended).toBe(true);
      expect(types(messages)).toEqual(["research.queued"]);
      await waitFor(() => held.streams.size === 0, { what: "the stream to unregister" });
    } finally {
      await held.close();
      await proxy.close();
    }
  });

  it("answers 404 JSON for an unknown research and 400 for a malformed Last-Event-ID", async () => {
    const missing = await openEvents(uid());
    expect(missing.status).toBe(404);
    expect(missing.headers.get("content-type")).toMatch(/application\/json/);
    expect(((await missing.json()) as any).error.code).toBe("not_found");

    const { body } = await postResearch(api, { query: "bad cursor" });
    const bad = await openEvents(body.id, { "last-event-id": "yesterday" });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as any).error.details).toEqual([
      { path: "headers.last-event-id", message: expect.stringMatching(/such as 1712345678901-0/) },
    ]);
    await api.store.cancel(body.id);
  });
});

/**
 * A TCP proxy in front of Redis that, once `hold()` is called, stops forwarding a connection's commands
 * at the first one matching `command` (a RESP array header + command name) until `release()`.
 */
async function redisHoldingProxy(redisUrl: string, command: RegExp) {
  const upstream = new URL(redisUrl);
  const sockets = new Set<Socket>();
  let armed = false;
  let released = false;
  let onHolding!: () => void;
  const holding = new Promise<void>((resolve) => (onHolding = resolve));
  const waiting: Array<() => void> = [];
  const server = createServer((client) => {
    const redis = createConnection({ host: upstream.hostname, port: Number(upstream.port) });
    sockets.add(client).add(redis);
    let queued: Buffer[] | undefined;
    client.on("data", (chunk: Buffer) => {
      if (queued) return void queued.push(chunk);
      if (armed && !released && command.test(chunk.toString("latin1"))) {
        queued = [chunk];
        waiting.push(() => {
          for (const c of queued!) redis.write(c);
          queued = undefined;
        });
        onHolding();
        return;
      }
      redis.write(chunk);
    });
    redis.pipe(client);
    const end = () => {
      client.destroy();
      redis.destroy();
    };
    client.on("error", end).on("close", end);
    redis.on("error", end).on("close", end);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `redis://127.0.0.1:${(server.address() as AddressInfo).port}`,
    hold: () => void (armed = true),
    /** Resolves once a matching command is being held. */
    holding,
    release: () => {
      released = true;
      for (const flush of waiting.splice(0)) flush();
    },
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
