import { createTraceReader, flattenTree } from "@tracelane/trace-store";
import { afterAll, describe, expect, inject, it } from "vitest";
import { decodeOtlpJson } from "../src/collector.js";
import { CollectorStats } from "../src/stats.js";
import { randomSpanId, randomTraceId, toOtlpJson, type SyntheticSpan } from "../src/testing/index.js";
import { cleanup, connect, testAssembler, uniquePrefix } from "./support.js";

const redis = connect(inject("redisUrl"));
const prefix = uniquePrefix("depth");
afterAll(async () => {
  await cleanup(redis, prefix);
  await redis.quit();
});

/** A parent -> child chain of `n` spans, root first. */
function chain(n: number): SyntheticSpan[] {
  const traceId = randomTraceId();
  const t0 = Date.now() - 60_000;
  const out: SyntheticSpan[] = [];
  for (let i = 0; i < n; i++) {
    out.push({
      traceId,
      spanId: randomSpanId(),
      ...(i > 0 ? { parentSpanId: out[i - 1]!.spanId } : {}),
      name: `hop ${i}`,
      kind: "internal",
      service: "deep-svc",
      startMs: t0 + i,
      endMs: t0 + i + 1,
    });
  }
  return out;
}

describe("trace depth limit (TRACELANE_MAX_TRACE_DEPTH)", () => {
  it("cuts spans below the limit from the tree and the span list, counting them once, whatever order they arrive in", async () => {
    const stats = new CollectorStats();
    const assembler = testAssembler(redis, prefix, { stats, maxTraceDepth: 1_000 });
    const spans = chain(1_200);
    // Deepest first, in three batches: a span's depth is only known once its ancestors arrived.
    const reversed = [...spans].reverse();
    for (const part of [reversed.slice(0, 400), reversed.slice(400, 800), reversed.slice(800)]) {
      await assembler.ingest(decodeOtlpJson(toOtlpJson(part)).spans);
    }
    await assembler.close();
    const trace = (await createTraceReader(redis, { prefix }).getTrace(spans[0]!.traceId))!;
    // Depths 0..1,199: 1,001..1,199 are below the limit.
    expect(trace.summary).toMatchObject({ spanCount: 1_200, maxDepth: 1_000, tooDeepSpans: 199 });
    expect(trace.spans).toHaveLength(1_001);
    const flat = flattenTree(trace.tree);
    expect(flat).toHaveLength(1_001);
    expect(Math.max(...flat.map((n) => n.depth))).toBe(1_000);
    expect(trace.tree).toHaveLength(1);
    expect(stats.spansTooDeep).toBe(199);
    // Ingesting the same spans again counts nothing new.
    await assembler.ingest(decodeOtlpJson(toOtlpJson(spans.slice(-10))).spans);
    expect(stats.spansTooDeep).toBe(199);
    expect(() => JSON.stringify(trace)).not.toThrow();
  });

  it("cuts nothing from a trace within the limit", async () => {
    const assembler = testAssembler(redis, prefix, { maxTraceDepth: 1_000 });
    const spans = chain(1_001);
    await assembler.ingest(decodeOtlpJson(toOtlpJson(spans)).spans);
    const trace = (await createTraceReader(redis, { prefix }).getTrace(spans[0]!.traceId))!;
    expect(trace.summary).toMatchObject({ spanCount: 1_001, tooDeepSpans: 0 });
    expect(flattenTree(trace.tree)).toHaveLength(1_001);
  });
});
