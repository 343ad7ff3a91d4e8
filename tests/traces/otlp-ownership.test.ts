import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { ONE_OF_EACH } from "@tracelane/launcher";
import { waitFor } from "@tracelane/testkit";
import { toOtlpJson, type SyntheticSpan } from "@tracelane/trace-collector/testing";
import type { ResearchView } from "@tracelane/research-store";
import { startPipeline } from "../support/pipeline-stack.js";
import { spansOfResearch } from "../support/spans.js";

/**
 * Issue 12: anyone could post spans into any trace. Here a research's trace is created by the api and
 * its workers (span stream), and a foreign OTLP sender tries to add to it through the collector.
 */
const ALICE = "alice-key-1f2e3d4c5b6a7980";
const BOB = "bob-key-0a1b2c3d4e5f6789ab";

let stack: Awaited<ReturnType<typeof startPipeline>>;
beforeAll(async () => {
  stack = await startPipeline(inject("redisUrl"), { replicas: ONE_OF_EACH, env: { API_KEYS: `${ALICE} alice,${BOB} bob` } });
}, 120_000);
afterAll(async () => {
  await stack?.stop();
});

const as = (key: string) => ({ authorization: `Bearer ${key}` });

async function traceOf(traceId: string) {
  const res = await fetch(`${stack.apiUrl}/v1/traces/${traceId}`, { headers: as(ALICE) });
  return res.status === 200 ? ((await res.json()) as { summary: { spanCount: number; rootName: string } }) : undefined;
}

async function postSpan(traceId: string, parentSpanId: string, key: string) {
  const span: SyntheticSpan = {
    traceId,
    spanId: randomBytes(8).toString("hex"),
    parentSpanId,
    name: "injected",
    kind: "internal",
    service: "stranger-svc",
    startMs: Date.now() - 1_000,
    endMs: Date.now() - 900,
  };
  const res = await fetch(`${stack.collectorUrl}/v1/traces`, {
    method: "POST",
    headers: { "content-type": "application/json", ...as(key) },
    body: toOtlpJson([span]),
  });
  expect(res.status).toBe(200);
  return (await res.json()) as { partialSuccess?: { rejectedSpans: number; errorMessage: string } };
}

describe("a foreign OTLP span and a research's trace", () => {
  it("is refused with another member's key and accepted with the owner's", async () => {
    const created = await fetch(`${stack.apiUrl}/v1/research`, {
      method: "POST",
      headers: { "content-type": "application/json", ...as(ALICE) },
      body: JSON.stringify({ query: "Whose trace is this?" }),
    });
    expect(created.status).toBe(202);
    const { id, traceId } = (await created.json()) as { id: string; traceId: string };
    const view = await waitFor(
      async () => {
        const r = await fetch(`${stack.apiUrl}/v1/research/${id}`, { headers: as(ALICE) });
        const v = (await r.json()) as ResearchView;
        return ["completed", "failed", "cancelled"].includes(v.status) ? v : undefined;
      },
      { timeoutMs: 60_000, what: "the research to finish" },
    );
    expect(view.status).toBe("completed");
    // Every span of the research assembled (none still to come), the api's request span (which names the owner) among them.
    const trace = await waitFor(
      async () => {
        const t = await traceOf(traceId);
        return t && t.summary.rootName.startsWith("POST") && t.summary.spanCount === spansOfResearch(view) ? t : undefined;
      },
      { timeoutMs: 30_000, what: "the research's whole trace" },
    );
    const before = trace.summary.spanCount;
    const detail = (await (await fetch(`${stack.apiUrl}/v1/traces/${traceId}`, { headers: as(ALICE) })).json()) as {
      tree: { spanId: string }[];
    };
    const root = detail.tree[0]!.spanId;

    const refused = await postSpan(traceId, root, BOB);
    expect(refused.partialSuccess?.rejectedSpans).toBe(1);
    expect(refused.partialSuccess?.errorMessage).toMatch(/belongs to another API key/);

    expect(await postSpan(traceId, root, ALICE)).toEqual({});
    await waitFor(async () => ((await traceOf(traceId))?.summary.spanCount === before + 1 ? true : undefined), {
      what: "the owner's span in the trace",
    });
  });
});
