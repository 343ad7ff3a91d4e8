import { loadPriceTable, PriceTable } from "@tracelane/pricing";
import type { RepriceProgress } from "@tracelane/queue-contract";
import { ResearchStore } from "@tracelane/research-store";
import { createTraceReader, traceKeys, type SpanRecord } from "@tracelane/trace-store";
import { afterAll, afterEach, describe, expect, inject, it } from "vitest";
import { decodeOtlpJson } from "../src/collector.js";
import { writeTraceScript } from "../src/assemble/scripts.js";
import { createRepricer } from "../src/reprice/repricer.js";
import { pipelineTrace, toOtlpJson } from "../src/testing/synthetic.js";
import { cleanup, connect, testAssembler, uniquePrefix } from "./support.js";

const redis = connect(inject("redisUrl"));
const prefixes: string[] = [];
const prefix = (name: string) => {
  const p = uniquePrefix(name);
  prefixes.push(p);
  return p;
};
afterEach(async () => {
  await cleanup(redis, ...prefixes.splice(0));
});
afterAll(async () => {
  await redis.quit();
});

/** The built-in table with gpt-4.1 at `factor` times its price. */
const scaled = (factor: number) =>
  new PriceTable(
    loadPriceTable().entries.map((e) =>
      e.model === "gpt-4.1"
        ? {
            ...e,
            prices: e.prices.map((p) => ({
              ...p,
              inputPer1M: p.inputPer1M * factor,
              outputPer1M: p.outputPer1M * factor,
              ...(p.cachedInputPer1M !== undefined ? { cachedInputPer1M: p.cachedInputPer1M * factor } : {}),
            })),
          }
        : e,
    ),
  );

// analysis: gpt-4.1, 1,000 in / 500 out = $0.006 at list price; synthesis: gemini-2.5-flash, 2,000 in / 800 out = $0.0026.
const STAGES = [
  { stage: "analysis", model: "gpt-4.1", inputTokens: 1_000, outputTokens: 500, latencyMs: 800 },
  { stage: "synthesis", model: "gemini-2.5-flash", inputTokens: 2_000, outputTokens: 800, latencyMs: 900 },
];

function setup(name: string) {
  const p = prefix(name);
  const spans = decodeOtlpJson(toOtlpJson(pipelineTrace({ stages: STAGES, startMs: Date.now() - 60_000 }))).spans;
  const traceId = spans[0]!.traceId;
  const repricer = createRepricer({
    redis,
    keys: traceKeys(p),
    prices: loadPriceTable(),
    research: new ResearchStore(redis, { prefix: `${p}:research` }),
  });
  const reader = createTraceReader(redis, { prefix: p });
  const reprice = (prices: PriceTable) => repricer.run({ since: 0, until: Date.now(), prices }, async () => {});
  return { p, spans, traceId, reprice, reader, keys: traceKeys(p).of(traceId) };
}

describe("re-pricing a stored trace", () => {
  it("lowers the cost index score when a price falls (assembly only ever raises it)", async () => {
    const { p, spans, traceId, reprice, reader, keys } = setup("lower");
    await testAssembler(redis, p).ingest(spans);
    expect(Number(await redis.zscore(keys.idxCost, traceId))).toBeCloseTo(0.0086, 12);
    const done = await reprice(scaled(0.5));
    expect(done).toMatchObject({ tracesDone: 1, tracesChanged: 1, callsRepriced: 1 });
    expect(Number(await redis.zscore(keys.idxCost, traceId))).toBe(0.0056);
    expect((await reader.getTrace(traceId))!.summary.byModel["gpt-4.1"]!.costUsd).toBe(0.003);
  });

  it("keeps the re-priced calls when a span arrives at a replica that held the trace in memory", async () => {
    const { p, spans, traceId, reprice, reader } = setup("held");
    const assembler = testAssembler(redis, p);
    const last = spans.at(-1)!;
    await assembler.ingest(spans.slice(0, -1)); // this replica now holds the trace (priced at list price) in memory
    await reprice(scaled(2));
    await assembler.ingest([last]);
    const summary = (await reader.getTrace(traceId))!.summary;
    expect(summary.spanCount).toBe(spans.length);
    expect(summary.byModel["gpt-4.1"]!.costUsd).toBe(0.012);
    expect(summary.costUsd).toBe(0.0146);
  });

  it("refuses the summary of an assembly that read the trace before the reprice", async () => {
    const { p, spans, traceId, reprice, reader, keys } = setup("stale");
    await testAssembler(redis, p).ingest(spans);
    const [version, json] = await redis.hmget(keys.summary, "v", "json");
    await reprice(scaled(2));
    // What a replica that read the same spans before the reprice would write: the same version, the old prices.
    const k = keys;
    const tags = [k.idxModel("gpt-4.1")];
    const old = JSON.parse(json!) as { startMs: number; costUsd: number; durationMs: number; status: string };
    const [written] = (await writeTraceScript.run(
      redis,
      [
        k.summary,
        k.anomalies,
        k.spans,
        k.dropped,
        k.idxExpiry,
        k.members,
        k.idxStart,
        k.idxCost,
        k.idxDuration,
        k.idxStatus("ok"),
        k.idxStatus("error"),
        k.anomalyLog,
        ...tags,
      ],
      [traceId, Number(version), json!, 600, old.startMs, old.costUsd, old.durationMs, old.status, tags.length, 0, 0],
    )) as number[];
    expect(written).toBe(0);
    expect((await reader.getTrace(traceId))!.summary.costUsd).toBe(0.0146);
    expect(Number(await redis.zscore(keys.idxCost, traceId))).toBe(0.0146);
  });

  it("prices each call at the price in force when it was made (a dated table)", async () => {
    const { p, spans, traceId, reprice, reader } = setup("dated");
    await testAssembler(redis, p).ingest(spans);
    // gpt-4.1 doubles from a second ago: after every call of the trace (a minute old), before now.
    const from = Date.now() - 1_000;
    const dated = new PriceTable(
      loadPriceTable().entries.map((e) =>
        e.model === "gpt-4.1"
          ? {
              ...e,
              prices: [
                ...e.prices,
                { inputPer1M: 4, cachedInputPer1M: 1, outputPer1M: 16, effectiveFrom: new Date(from).toISOString(), effectiveFromMs: from },
              ],
            }
          : e,
      ),
    );
    expect(dated.cost("gpt-4.1", { inputTokens: 1_000, outputTokens: 500 }).costUsd).toBe(0.012);
    const done = await reprice(dated);
    // Same costs; every call now records the dated table's version.
    expect(done).toMatchObject({ tracesDone: 1, tracesChanged: 1, callsRepriced: 0, costAfterUsd: 0.0086, priceVersion: dated.version });
    const summary = (await reader.getTrace(traceId))!.summary;
    expect(summary.byModel["gpt-4.1"]!.costUsd).toBe(0.006);
    expect(summary.priceVersions).toEqual([dated.version]);
    expect(summary.calls.every((c) => c.priceVersion === dated.version)).toBe(true);
  });

  it("prices a call whose model was unpriced once the table has it, and changes nothing the second time", async () => {
    const { p, spans, traceId, reprice, reader, keys } = setup("unpriced");
    const withoutGemini = new PriceTable(loadPriceTable().entries.filter((e) => e.model !== "gemini-2.5-flash"));
    await testAssembler(redis, p, { prices: withoutGemini }).ingest(spans);
    expect((await reader.getTrace(traceId))!.summary).toMatchObject({ unpricedCalls: 1, costUsd: 0.006 });

    const first = await reprice(loadPriceTable());
    expect(first).toMatchObject({ tracesChanged: 1, callsRepriced: 1, nowPriced: 1, costBeforeUsd: 0.006, costAfterUsd: 0.0086 });
    const summary = (await reader.getTrace(traceId))!.summary;
    expect(summary).toMatchObject({ unpricedCalls: 0, costUsd: 0.0086 });
    expect(summary.byStage.synthesis).toMatchObject({ costUsd: 0.0026, unpricedCalls: 0 });
    const stored = async () => ({
      summary: await redis.hgetall(keys.summary),
      spans: await redis.hgetall(keys.spans),
      cost: await redis.zscore(keys.idxCost, traceId),
    });
    const once = await stored();
    expect(once.summary.v).toBe(`${spans.length}.5`);
    const spanWithCall = Object.values(once.spans)
      .map((j) => JSON.parse(j) as SpanRecord)
      .find((s) => s.call?.model === "gemini-2.5-flash");
    expect(spanWithCall!.call!.costUsd).toBe(0.0026);

    const second = await reprice(loadPriceTable());
    expect(second).toMatchObject({
      tracesDone: 1,
      tracesChanged: 0,
      callsRepriced: 0,
      nowPriced: 0,
      costBeforeUsd: 0.0086,
      costAfterUsd: 0.0086,
    });
    expect(await stored()).toEqual(once);
  });

  it("resumes an interrupted reprice from its last report, so the figures add up over attempts", async () => {
    const p = prefix("resume");
    const assembler = testAssembler(redis, p);
    // Five traces, all in one partition's start index or spread over several: steps of two either way.
    for (let i = 0; i < 5; i++) {
      await assembler.ingest(decodeOtlpJson(toOtlpJson(pipelineTrace({ stages: STAGES, startMs: Date.now() - 60_000 - i }))).spans);
    }
    const repricer = createRepricer({
      redis,
      keys: traceKeys(p),
      prices: loadPriceTable(),
      research: new ResearchStore(redis, { prefix: `${p}:research` }),
      batchSize: 2,
    });
    const window = { since: 0, until: Date.now(), prices: scaled(2) };
    const reports: RepriceProgress[] = [];
    // The first attempt dies right after its first step of traces is reported (as a collector killed mid-job).
    await expect(
      repricer.run(window, async (r) => {
        reports.push(r);
        if (r.tracesDone > 0) throw new Error("collector killed");
      }),
    ).rejects.toThrow("collector killed");
    const last = reports.at(-1)!;
    expect(last.tracesDone).toBeGreaterThan(0);
    expect(last.tracesDone).toBeLessThan(5);
    const done = await repricer.run(window, async () => {}, undefined, last);
    expect(done).toMatchObject({ tracesTotal: 5, tracesDone: 5, tracesChanged: 5, callsRepriced: 5, tracesSkipped: 0 });
    expect(done.costBeforeUsd).toBeCloseTo(5 * 0.0086, 12);
    expect(done.costAfterUsd).toBeCloseTo(5 * (0.012 + 0.0026), 12);
  });
});
