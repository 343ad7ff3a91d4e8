import { afterAll, beforeAll, describe, expect, it } from "vitest";
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

  it("answers 404 JSON for an unknown research and 400 for a malformed Last-Event-ID", async () => {
    const missing = await openEvents(uid());
    expect(missing.status).toBe(404);
    expect(missing.headers.get("content-type")).toMatch(/application\/json/);
    expect(((await missing.json()) as any).error.code).toBe("not_found");

    const { body } = await postResearch(api, { query: "bad cursor" });
    const bad = await openEvents(body.id, { "last-event-id": "yesterday" });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as any).error.details).toEqual([{ path: "headers.last-event-id", message: expect.stringMatching(/such as 1712345678901-0/) }]);
    await api.store.cancel(body.id);
  });
});
