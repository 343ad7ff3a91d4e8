import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { stageJobId } from "@tracelane/queue-contract";
import { startTracing, type TracingHandle } from "@tracelane/tracing";
import { postResearch, startApi, uid, type TestApi } from "./helpers.js";

// OTEL_SDK_DISABLED=true: no spans are recorded, yet a caller's trace must survive the queue hop.
let api: TestApi;
let tracing: TracingHandle;

beforeAll(async () => {
  tracing = startTracing({ serviceName: "api-test", env: { OTEL_SDK_DISABLED: "true" } });
  api = await startApi({ env: { TRUST_INCOMING_TRACE_CONTEXT: "always" } });
});
afterAll(async () => {
  await api.close();
  await tracing.shutdown();
});

describe("POST /v1/research with the tracing SDK disabled", () => {
  it("still continues the caller's traceparent into the job and the response", async () => {
    expect(tracing.enabled).toBe(false);
    const traceId = uid();
    const spanId = uid().slice(0, 16);
    const res = await postResearch(api, { query: "no sdk" }, { traceparent: `00-${traceId}-${spanId}-01` });
    expect(res.status).toBe(202);
    expect(res.body.traceId).toBe(traceId);
    const job = await api.queues.queue("analysis").getJob(stageJobId(res.body.id, "analysis"));
    expect(job?.data.trace.traceparent).toBe(`00-${traceId}-${spanId}-01`);
  });

  it("answers traceId null and no trace link when there is neither an SDK nor an incoming trace", async () => {
    const res = await postResearch(api, { query: "untraced" });
    expect(res.status).toBe(202);
    expect(res.body.traceId).toBeNull();
    expect(res.body.links).not.toHaveProperty("trace");
    expect(res.body.links).not.toHaveProperty("ui");
  });
});
