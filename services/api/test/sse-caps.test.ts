import { afterEach, describe, expect, it } from "vitest";
import { waitFor } from "@tracelane/testkit";
import { postResearch, startApi, type TestApi } from "./helpers.js";

let api: TestApi | undefined;
const aborts: AbortController[] = [];
afterEach(async () => {
  for (const a of aborts.splice(0)) a.abort();
  await api?.close();
  api = undefined;
});

/** Open an event stream and wait for its first event (the replayed research.queued): it is open on the server. */
async function openStream(a: TestApi, id: string): Promise<{ res: Response; close: () => void }> {
  const abort = new AbortController();
  aborts.push(abort);
  const res = await fetch(`${a.url}/v1/research/${id}/events`, { signal: abort.signal });
  if (res.status === 200) {
    const reader = res.body!.getReader();
    await reader.read();
  }
  return { res, close: () => abort.abort() };
}

describe("event stream caps (MAX_SSE_STREAMS_PER_KEY, MAX_SSE_STREAMS)", () => {
  it("answers 429 too_many_streams with Retry-After over the per-key cap before opening a stream, and opens the next once one closes", async () => {
    api = await startApi({ env: { MAX_SSE_STREAMS_PER_KEY: "2", MAX_SSE_STREAMS: "100" } });
    const { body } = await postResearch(api, { query: "watched" });
    const first = await openStream(api, body.id);
    const second = await openStream(api, body.id);
    expect([first.res.status, second.res.status]).toEqual([200, 200]);

    const refused = await openStream(api, body.id);
    expect(refused.res.status).toBe(429);
    expect(refused.res.headers.get("content-type")).toMatch(/^application\/json/);
    expect(refused.res.headers.get("retry-after")).toBe("5");
    const error = ((await refused.res.json()) as { error: { code: string; message: string } }).error;
    expect(error.code).toBe("too_many_streams");
    expect(error.message).toContain("MAX_SSE_STREAMS_PER_KEY");
    expect(api.streams.size).toBe(2);

    first.close();
    const a = api;
    await waitFor(() => a.streams.size === 1, { what: "the closed stream to end on the server" });
    const next = await openStream(api, body.id);
    expect(next.res.status).toBe(200);
  });

  it("answers 503 stream_capacity over the process-wide cap; a 404 or a refused stream holds no slot", async () => {
    api = await startApi({ env: { MAX_SSE_STREAMS_PER_KEY: "0", MAX_SSE_STREAMS: "1" } });
    const { body } = await postResearch(api, { query: "watched" });
    // A stream that never opened (unknown research) gives its slot back.
    expect((await fetch(`${api.url}/v1/research/${"0".repeat(32)}/events`)).status).toBe(404);
    const only = await openStream(api, body.id);
    expect(only.res.status).toBe(200);

    for (let i = 0; i < 3; i++) {
      const refused = await openStream(api, body.id);
      expect(refused.res.status).toBe(503);
      expect(refused.res.headers.get("retry-after")).toBe("5");
      expect(((await refused.res.json()) as { error: { code: string } }).error.code).toBe("stream_capacity");
    }
    only.close();
    const a = api;
    await waitFor(() => a.streams.size === 0, { what: "the stream to end" });
    expect((await openStream(api, body.id)).res.status).toBe(200);

    const metrics = await (await fetch(`${api.url}/metrics`)).text();
    expect(metrics).toMatch(/^tracelane_http_rejections_total\{tracelane_rejection_reason="sse_streams_total"\} 3$/m);
  });
});
