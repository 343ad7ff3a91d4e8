import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import { SpanKind, SpanStatusCode, trace } from "@opentelemetry/api";
import { freePort } from "@tracelane/testkit";
import OpenAI from "openai";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { createTracedFetch, withChatSpan } from "../src/index.js";
import { sanitizeUrl } from "../src/traced-fetch.js";
import { useInMemoryTracing, type InMemoryTracing } from "../src/testing.js";
import {
  ATTR_ERROR_TYPE,
  ATTR_HTTP_REQUEST_METHOD,
  ATTR_HTTP_REQUEST_RESEND_COUNT,
  ATTR_HTTP_RESPONSE_STATUS_CODE,
  ATTR_RETRY_DELAY_MS,
  ATTR_SERVER_ADDRESS,
  ATTR_SERVER_PORT,
  ATTR_URL_FULL,
} from "@tracelane/tracing/attributes";

const CANARY_KEY = "sk-canary-5f1d2c3b4a5e6f708192a3b4c5d6e7f8";

const completion = {
  id: "chatcmpl-1",
  object: "chat.completion",
  created: 1_700_000_000,
  model: "sim-model",
  choices: [{ index: 0, message: { role: "assistant", content: "hi" }, finish_reason: "stop" }],
  usage: { prompt_tokens: 3, completion_tokens: 1, total_tokens: 4 },
};

describe("createTracedFetch", () => {
  let tracing: InMemoryTracing;
  let server: Server;
  let baseURL: string;
  let requests: IncomingHttpHeaders[] = [];
  /** Status codes the server answers with, in order; 200 once they run out. */
  let script: number[] = [];

  beforeAll(async () => {
    tracing = useInMemoryTracing();
    server = createServer((req, res) => {
      requests.push(req.headers);
      req.resume();
      req.on("end", () => {
        const status = script.shift() ?? 200;
        // retry-after-ms keeps the openai client's backoff short.
        res.writeHead(status, { "content-type": "application/json", "retry-after-ms": "20" });
        res.end(JSON.stringify(status === 200 ? completion : { error: { message: "overloaded", type: "server_error" } }));
      });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const address = server.address();
    if (address === null || typeof address === "string") throw new Error("no port");
    baseURL = `http://127.0.0.1:${address.port}/v1`;
  });
  beforeEach(() => {
    tracing.reset();
    requests = [];
    script = [];
  });
  afterAll(async () => {
    await new Promise((resolve) => server.close(resolve));
    await tracing.shutdown();
  });

  it("records each attempt of the openai client as a CLIENT span: 503 then 200 gives resend_count 0 and 1 and a retry event", async () => {
    script = [503];
    const client = new OpenAI({ apiKey: CANARY_KEY, baseURL, fetch: createTracedFetch(), maxRetries: 2 });
    const reply = await withChatSpan({ model: "sim-model", provider: "openai" }, () =>
      client.chat.completions.create({ model: "sim-model", messages: [{ role: "user", content: "hello" }] }),
    );
    expect(reply.choices[0]?.message.content).toBe("hi");

    const chat = tracing.spanNamed("chat sim-model");
    const attempts = tracing.spans().filter((s) => s.kind === SpanKind.CLIENT && s.name === "POST");
    expect(attempts).toHaveLength(2);
    const [first, second] = attempts;
    for (const attempt of attempts) {
      expect(attempt.parentSpanContext?.spanId).toBe(chat.spanContext().spanId);
      expect(attempt.spanContext().traceId).toBe(chat.spanContext().traceId);
      expect(attempt.attributes).toMatchObject({
        [ATTR_HTTP_REQUEST_METHOD]: "POST",
        [ATTR_URL_FULL]: `${baseURL}/chat/completions`,
        [ATTR_SERVER_ADDRESS]: "127.0.0.1",
        [ATTR_SERVER_PORT]: Number(new URL(baseURL).port),
      });
    }
    expect(first?.attributes).toMatchObject({
      [ATTR_HTTP_REQUEST_RESEND_COUNT]: 0,
      [ATTR_HTTP_RESPONSE_STATUS_CODE]: 503,
      [ATTR_ERROR_TYPE]: "503",
    });
    expect(first?.attributes[ATTR_RETRY_DELAY_MS]).toBeUndefined();
    expect(first?.status.code).toBe(SpanStatusCode.ERROR);
    expect(second?.attributes).toMatchObject({ [ATTR_HTTP_REQUEST_RESEND_COUNT]: 1, [ATTR_HTTP_RESPONSE_STATUS_CODE]: 200 });
    expect(second?.attributes[ATTR_RETRY_DELAY_MS]).toBeGreaterThanOrEqual(15);
    expect(second?.status.code).toBe(SpanStatusCode.UNSET);

    const retries = chat.events.filter((e) => e.name === "retry");
    expect(retries).toHaveLength(1);
    expect(retries[0]?.attributes).toMatchObject({ [ATTR_HTTP_RESPONSE_STATUS_CODE]: 503, [ATTR_HTTP_REQUEST_RESEND_COUNT]: 1 });
    expect(retries[0]?.attributes?.[ATTR_RETRY_DELAY_MS]).toBeGreaterThanOrEqual(15);

    // Each attempt carried its own span as the remote parent to the server (sampled, and random: W3C Level 2).
    expect(requests.map((h) => h.traceparent)).toEqual(attempts.map((s) => `00-${s.spanContext().traceId}-${s.spanContext().spanId}-03`));
    // The key went to the server, but into no span.
    expect(requests[0]?.authorization).toBe(`Bearer ${CANARY_KEY}`);
    expect(JSON.stringify(tracing.spans().map((s) => ({ a: s.attributes, e: s.events, r: s.resource.attributes })))).not.toContain(
      "canary",
    );
  });

  it("numbers sequential answered requests under one parent as new requests, not resends", async () => {
    const fetchTraced = createTracedFetch();
    await trace.getTracer("test").startActiveSpan("parent", async (parent) => {
      await (await fetchTraced(`${baseURL}/models`)).text();
      await (await fetchTraced(`${baseURL}/models`)).text();
      parent.end();
    });
    const attempts = tracing.spans().filter((s) => s.name === "GET");
    expect(attempts.map((s) => s.attributes[ATTR_HTTP_REQUEST_RESEND_COUNT])).toEqual([0, 0]);
    expect(tracing.spanNamed("parent").events).toEqual([]);
  });

  it("marks a network failure as an error with the cause's code and counts the next call as a resend", async () => {
    const closedPort = await freePort();
    const fetchTraced = createTracedFetch();
    await trace.getTracer("test").startActiveSpan("parent", async (parent) => {
      await expect(fetchTraced(`http://127.0.0.1:${closedPort}/v1/chat/completions`, { method: "post" })).rejects.toThrow();
      await expect(fetchTraced(`http://127.0.0.1:${closedPort}/v1/chat/completions`, { method: "post" })).rejects.toThrow();
      parent.end();
    });
    const [first, second] = tracing.spans().filter((s) => s.name === "POST");
    expect(first?.status.code).toBe(SpanStatusCode.ERROR);
    expect(first?.attributes).toMatchObject({ [ATTR_ERROR_TYPE]: "ECONNREFUSED", [ATTR_HTTP_REQUEST_RESEND_COUNT]: 0 });
    expect(first?.attributes[ATTR_HTTP_RESPONSE_STATUS_CODE]).toBeUndefined();
    expect(second?.attributes).toMatchObject({ [ATTR_HTTP_REQUEST_RESEND_COUNT]: 1 });
    expect(tracing.spanNamed("parent").events[0]?.attributes).toMatchObject({ [ATTR_ERROR_TYPE]: "ECONNREFUSED" });
  });

  it("keeps credentials and secret query values out of url.full", () => {
    expect(sanitizeUrl(new URL("https://user:pw@api.example.com/v1/models?key=AIzaSecret&alt=json&X-Goog-Signature=abc"))).toBe(
      "https://api.example.com/v1/models?key=REDACTED&alt=json&X-Goog-Signature=REDACTED",
    );
  });
});
