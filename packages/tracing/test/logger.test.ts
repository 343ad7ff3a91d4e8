import { trace } from "@opentelemetry/api";
import { Writable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLogger } from "../src/index.js";
import { useInMemoryTracing, type InMemoryTracing } from "../src/testing.js";

const CANARY = "sk-canary-0123456789abcdef0123456789abcdef";

function capturedLogger() {
  const lines: string[] = [];
  const logger = createLogger("logger-test", { level: "debug", destination: { write: (line: string) => void lines.push(line) } });
  return { logger, output: () => lines.join("") };
}

describe("createLogger", () => {
  let tracing: InMemoryTracing;
  beforeAll(() => {
    tracing = useInMemoryTracing();
  });
  afterAll(() => tracing.shutdown());

  it("never writes an API key passed as an Authorization header or apiKey field", () => {
    const { logger, output } = capturedLogger();
    const err = Object.assign(new Error("request failed"), {
      config: { headers: { Authorization: `Bearer ${CANARY}` } },
      headers: { authorization: `Bearer ${CANARY}`, "x-api-key": CANARY },
    });
    logger.info({ apiKey: CANARY }, "top-level field");
    logger.info({ client: { apiKey: CANARY, baseURL: "http://sim" } }, "nested client options");
    logger.info({ req: { headers: { authorization: `Bearer ${CANARY}`, "x-api-key": CANARY, "user-agent": "t" } } }, "request");
    logger.info({ providers: [{ name: "openai", api_key: CANARY }] }, "array of options");
    logger.error({ err }, "error carrying request config");
    logger.debug({ upstream: { request: { headers: { Authorization: CANARY } } } }, "deep");

    const text = output();
    expect(text).not.toContain("canary");
    expect(text.match(/\[redacted\]/g)?.length).toBeGreaterThanOrEqual(9);
    expect(text).toContain('"baseURL":"http://sim"');
    // The censored copy of the error is still serialized as an error.
    expect(text).toMatch(/"err":\{"type":"Error","message":"request failed","stack":"Error: request failed/);
    expect(text).toContain('"user-agent":"t"');
  });

  it("censors secrets in child-logger bindings and leaves the caller's objects untouched", () => {
    const { logger, output } = capturedLogger();
    const options = { apiKey: CANARY, model: "m" };
    logger.child({ provider: options }).info("bound");
    expect(output()).not.toContain("canary");
    expect(output()).toContain('"model":"m"');
    expect(options.apiKey).toBe(CANARY);
  });

  it("stamps trace_id and span_id of the active span", () => {
    const { logger, output } = capturedLogger();
    trace.getTracer("t").startActiveSpan("op", (span) => {
      logger.info("inside");
      span.end();
      const line = JSON.parse(output()) as Record<string, unknown>;
      expect(line).toMatchObject({ trace_id: span.spanContext().traceId, span_id: span.spanContext().spanId, trace_flags: "01" });
    });
  });

  it("writes an error logged as a plain { name, message } with that class and message, and no empty stack", () => {
    const { logger, output } = capturedLogger();
    logger.warn({ err: { name: "CircuitOpenError", message: "circuit open for gpt-4.1" } }, "job failed");
    const line = JSON.parse(output()) as { err: Record<string, unknown> };
    expect(line.err).toEqual({ type: "CircuitOpenError", message: "circuit open for gpt-4.1" });
  });

  it("writes an Error under `error` (not only `err`) with its class, message and stack", () => {
    const { logger, output } = capturedLogger();
    logger.error({ error: new RangeError("too far") }, "failed");
    const line = JSON.parse(output()) as { error: Record<string, unknown> };
    expect(line.error).toMatchObject({ type: "RangeError", message: "too far" });
    expect(line.error.stack).toMatch(/^RangeError: too far\n/);
  });

  it("writes one readable line, not JSON, in the pretty format", async () => {
    const chunks: string[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        chunks.push(chunk.toString());
        done();
      },
    });
    const logger = createLogger("api", { level: "info", format: "pretty", destination: sink });
    logger.info({ port: 3000 }, "api listening");
    await new Promise((r) => setImmediate(r));
    const text = chunks.join("");
    expect(text).toMatch(/^\[\d{2}:\d{2}:\d{2}\.\d{3}\] INFO \(api\): api listening \{"port":3000\}\n$/);
  });
});
