import { SpanStatusCode } from "@opentelemetry/api";
import { Router } from "express";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { useInMemoryTracing, type InMemoryTracing } from "@tracelane/tracing/testing";
import { HttpError } from "../src/http/errors.js";
import { startApi, type TestApi } from "./helpers.js";

let api: TestApi;
let tracing: InMemoryTracing;

beforeAll(async () => {
  tracing = useInMemoryTracing();
  const traceRouter = Router();
  traceRouter.get("/v1/traces/:traceId", (req, res) => {
    if (req.params.traceId === "missing") throw new HttpError(404, "not_found", 'No trace with id "missing".');
    if (req.params.traceId === "boom") throw new Error("redis password is hunter2");
    res.json({ traceId: req.params.traceId });
  });
  api = await startApi({ traceRouter });
});
afterAll(async () => {
  await api.close();
  await tracing.shutdown();
});

describe("createApp", () => {
  it("mounts the trace router", async () => {
    const res = await fetch(`${api.url}/v1/traces/abc`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ traceId: "abc" });
  });

  it("renders an HttpError from any router as { error: { code, message, details } }", async () => {
    const res = await fetch(`${api.url}/v1/traces/missing`);
    expect(res.status).toBe(404);
    expect(await res.json()).toEqual({ error: { code: "not_found", message: 'No trace with id "missing".', details: null } });
  });

  it("answers an unexpected error with 500 internal_error without leaking it, recording it on the SERVER span", async () => {
    tracing.reset();
    const res = await fetch(`${api.url}/v1/traces/boom`);
    expect(res.status).toBe(500);
    const body = (await res.json()) as { error: { code: string; message: string; details: { traceId: string } } };
    expect(body.error.code).toBe("internal_error");
    expect(JSON.stringify(body)).not.toMatch(/hunter2|redis/);

    const span = tracing.spanNamed("GET /v1/traces/:traceId");
    expect(body.error.details.traceId).toBe(span.spanContext().traceId);
    expect(span.status.code).toBe(SpanStatusCode.ERROR);
    expect(span.events.map((e) => e.name)).toEqual(["exception"]);
  });

  it("answers 400 for a path that is not valid percent-encoding", async () => {
    const res = await fetch(`${api.url}/v1/research/%E0%A4%A`);
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe("invalid_request");
  });
});
