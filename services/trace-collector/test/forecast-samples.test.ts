import { ATTR_QUERY_CHARS, ATTR_RESEARCH_COMPLETED } from "@tracelane/pipeline";
import { readStageSamples, traceKeys } from "@tracelane/trace-store";
import { waitFor } from "@tracelane/testkit";
import { afterAll, afterEach, describe, expect, inject, it } from "vitest";
import { decodeOtlpJson, type Assembler } from "../src/collector.js";
import { pipelineTrace, randomSpanId, toOtlpJson, type StageSpec, type SyntheticSpan } from "../src/testing/synthetic.js";
import { cleanup, connect, testAssembler, uniquePrefix } from "./support.js";

const redis = connect(inject("redisUrl"));
const prefixes: string[] = [];
const assemblers: Assembler[] = [];
const decode = (spans: SyntheticSpan[]) => decodeOtlpJson(toOtlpJson(spans)).spans;

afterEach(async () => {
  await Promise.all(assemblers.splice(0).map((a) => a.close()));
  await cleanup(redis, ...prefixes.splice(0));
});
afterAll(async () => {
  await redis.quit();
});

function setup(name: string, opts: { window?: number; settleMs?: number } = {}) {
  const prefix = uniquePrefix(name);
  prefixes.push(prefix);
  const assembler = testAssembler(redis, prefix, {
    assemblyIntervalMs: 20,
    forecastWindow: opts.window ?? 200,
    forecastSettleMs: opts.settleMs ?? 0,
  });
  assemblers.push(assembler);
  const keys = traceKeys(prefix);
  const samples = (stage: string, model: string) => readStageSamples(redis, keys, [{ stage, model }], 1_000).then((r) => r[0]!);
  return { prefix, assembler, keys, samples };
}

const stages = (analysisInput: number): StageSpec[] => [
  { stage: "analysis", model: "gpt-4.1", inputTokens: analysisInput, outputTokens: 50, latencyMs: 5 },
  { stage: "synthesis", model: "deepseek-v3.2", inputTokens: 300, outputTokens: 80, latencyMs: 5 },
];

/** A research trace; `completed` marks its last consumer span as the one that completed the research. */
function research(analysisInput: number, opts: { completed?: boolean; queryChars?: number } = {}): SyntheticSpan[] {
  const spans = pipelineTrace({ stages: stages(analysisInput) });
  if (opts.completed !== false) {
    const last = spans.filter((s) => s.kind === "consumer").at(-1)!;
    last.attributes = { ...last.attributes, [ATTR_RESEARCH_COMPLETED]: true };
  }
  spans[0]!.attributes = { ...spans[0]!.attributes, [ATTR_QUERY_CHARS]: opts.queryChars ?? 40 };
  return spans;
}

/** One more model call of `stage` in an existing trace (a claim check exported late by another replica). */
function lateCall(trace: SyntheticSpan[], stage: string, inputTokens: number): SyntheticSpan {
  const chat = trace.find((s) => s.kind === "client" && s.attributes?.["tracelane.stage"] === stage)!;
  return { ...chat, spanId: randomSpanId(), attributes: { ...chat.attributes, "gen_ai.usage.input_tokens": inputTokens } };
}

describe("forecast samples (the collector's per stage+model token baselines)", () => {
  it("keeps the newest `window` researches per stage and model, evicting the oldest", async () => {
    const { assembler, samples } = setup("forecast-window", { window: 3 });
    let newest = "";
    for (const input of [100, 200, 300, 400, 500]) {
      const trace = research(input);
      newest = trace[0]!.traceId;
      await assembler.ingest(decode(trace));
      // One at a time, so their order in the list is their completion order.
      await waitFor(async () => ((await samples("analysis", "gpt-4.1")).length >= Math.min(3, input / 100) ? true : undefined), {
        timeoutMs: 5_000,
        what: `the research with ${input} input tokens to be recorded`,
      });
      await waitFor(async () => ((await samples("analysis", "gpt-4.1"))[0]?.inputTokens === input ? true : undefined), {
        timeoutMs: 5_000,
        what: `the research with ${input} input tokens at the head of the list`,
      });
    }
    const analysis = await samples("analysis", "gpt-4.1");
    expect(analysis.map((s) => s.inputTokens)).toEqual([500, 400, 300]); // bounded, newest first, 100 and 200 evicted
    // Each sample names its research's trace, in every stage's list: the api joins the stages on it.
    expect(analysis[0]).toEqual({ calls: 1, inputTokens: 500, outputTokens: 50, cachedInputTokens: 0, queryChars: 40, traceId: newest });
    expect((await samples("synthesis", "deepseek-v3.2")).map((s) => s.traceId)).toEqual(analysis.map((s) => s.traceId));
    expect(await redis.ttl(traceKeys(prefixes[0]!).forecast("analysis", "gpt-4.1"))).toBeGreaterThan(6 * 24 * 3600);
  });

  it("reads samples recorded before the trace id was kept, and skips what is not a sample", async () => {
    const { keys, samples } = setup("forecast-old-format");
    const key = keys.forecast("analysis", "gpt-4.1");
    await redis.rpush(key, "[1,510,100,0,40]", "[2,600,120,10]", "[1,1,1,1,40,7]", "not json", '[1,2,3,4,5,"t1"]');
    expect(await samples("analysis", "gpt-4.1")).toEqual([
      { calls: 1, inputTokens: 510, outputTokens: 100, cachedInputTokens: 0, queryChars: 40 },
      { calls: 2, inputTokens: 600, outputTokens: 120, cachedInputTokens: 10, queryChars: 0 },
      { calls: 1, inputTokens: 2, outputTokens: 3, cachedInputTokens: 4, queryChars: 5, traceId: "t1" },
    ]);
  });

  it("records nothing for a research that has not completed", async () => {
    const { assembler, samples, keys } = setup("forecast-unfinished");
    await assembler.ingest(decode(research(100, { completed: false })));
    await new Promise((r) => setTimeout(r, 200)); // ten assembly ticks
    expect(await samples("analysis", "gpt-4.1")).toEqual([]);
    for (const part of keys.partitions) expect(await redis.zcard(part.forecastPending)).toBe(0);
  });

  it("waits the settle time for late spans, sums a stage's calls per research, and records each research once", async () => {
    // Settle time well above two ingests on a loaded machine: the late call must arrive inside it.
    const { assembler, samples, keys } = setup("forecast-settle", { settleMs: 2_000 });
    const trace = research(100);
    await assembler.ingest(decode(trace));
    // Completed, but held until it settles: a claim check exported late still counts.
    await assembler.ingest(decode([lateCall(trace, "analysis", 60)]));
    expect(await samples("analysis", "gpt-4.1")).toEqual([]);
    const [analysis] = await waitFor(async () => {
      const got = await samples("analysis", "gpt-4.1");
      return got.length > 0 ? got : undefined;
    });
    expect(analysis).toEqual({
      calls: 2,
      inputTokens: 160,
      outputTokens: 100,
      cachedInputTokens: 0,
      queryChars: 40,
      traceId: trace[0]!.traceId,
    });
    for (const part of keys.partitions) expect(await redis.hlen(part.forecastSamples)).toBe(0);

    // Spans after it was recorded (or a redelivery of the whole trace) never record it again.
    await assembler.ingest(decode([...trace, lateCall(trace, "analysis", 70)]));
    await new Promise((r) => setTimeout(r, 600));
    expect(await samples("analysis", "gpt-4.1")).toHaveLength(1);
    for (const part of keys.partitions) expect(await redis.zcard(part.forecastPending)).toBe(0);
  });

  it("records a research once when two collector replicas assemble it", async () => {
    const { prefix, assembler, samples } = setup("forecast-replicas", { settleMs: 100 });
    const other = testAssembler(redis, prefix, { assemblyIntervalMs: 20, forecastSettleMs: 100 });
    assemblers.push(other);
    const trace = decode(research(100));
    await Promise.all([assembler.ingest(trace), other.ingest(trace)]);
    await waitFor(async () => ((await samples("analysis", "gpt-4.1")).length > 0 ? true : undefined));
    await new Promise((r) => setTimeout(r, 300));
    expect(await samples("analysis", "gpt-4.1")).toHaveLength(1);
  });
});
