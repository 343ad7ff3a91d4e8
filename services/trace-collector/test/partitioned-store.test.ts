import { createHash } from "node:crypto";
import {
  anomalyMember,
  createTraceReader,
  TRACE_PARTITIONS,
  tracePartition,
  type Anomaly,
  type TraceFilter,
  type TraceListItem,
  type TraceReader,
  type TraceSort,
} from "@tracelane/trace-store";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { decodeOtlpJson } from "../src/collector.js";
import { pipelineTrace, toOtlpJson } from "../src/testing/synthetic.js";
import { cleanup, connect, testAssembler, uniquePrefix } from "./support.js";

const redis = connect(inject("redisUrl"));
const prefix = uniquePrefix("partitioned");
const reader = createTraceReader(redis, { prefix });
// An hour ago, on a whole second: the collector refuses spans dated outside a week before now.
const base = Math.floor(Date.now() / 1000) * 1000 - 3_600_000;
const TRACES = 240;
const MODELS = ["gpt-4.1", "gpt-4.1-mini", "gemini-2.5-flash"];

/** Fixed ids (so a failure replays), spread over every partition; start, cost and duration repeat, so ties abound. */
const traceIdOf = (i: number) => createHash("md5").update(`partitioned-trace-${i}`).digest("hex");
const specOf = (i: number) => ({
  traceId: traceIdOf(i),
  startMs: base + Math.floor(i / 4) * 1_000,
  stages: [
    {
      stage: "analysis",
      model: MODELS[i % 3]!,
      inputTokens: 10_000 * ((i % 5) + 1),
      outputTokens: 100,
      latencyMs: 500 * ((i % 7) + 1),
      ...(i % 11 === 0 ? { error: "ProviderDown" } : {}),
    },
  ],
});

let all: TraceListItem[] = [];
let anomalies: Anomaly[] = [];

beforeAll(async () => {
  const spans = Array.from({ length: TRACES }, (_, i) => pipelineTrace(specOf(i))).flat();
  await testAssembler(redis, prefix).ingest(decodeOtlpJson(toOtlpJson(spans)).spans);
  const details = await Promise.all(Array.from({ length: TRACES }, (_, i) => reader.getTrace(traceIdOf(i))));
  all = details.map((d) => d!.summary);
  anomalies = details.flatMap((d) => d!.anomalies);
});
afterAll(async () => {
  await cleanup(redis, prefix);
  await redis.quit();
});

const scoreOf: Record<TraceSort, (t: TraceListItem) => number> = {
  start: (t) => t.startMs,
  cost: (t) => t.costUsd,
  duration: (t) => t.durationMs,
};

/** What one index over every trace would list: highest score first, equal scores by trace id descending. */
function expected(filter: TraceFilter, keep: (t: TraceListItem) => boolean = () => true): string[] {
  const score = scoreOf[filter.sort ?? "start"];
  return all
    .filter(keep)
    .sort((a, b) => score(b) - score(a) || (a.traceId < b.traceId ? 1 : -1))
    .map((t) => t.traceId);
}

/** Every page of a query, following nextCursor to the end. */
async function pages(r: TraceReader, filter: TraceFilter): Promise<string[][]> {
  const out: string[][] = [];
  let cursor: string | undefined;
  do {
    const page = await r.listTraces({ ...filter, ...(cursor ? { cursor } : {}) });
    out.push(page.traces.map((t) => t.traceId));
    cursor = page.nextCursor;
  } while (cursor);
  return out;
}

/** The pages a sorted list of all traces would be cut into (a last empty page when the list fills the one before). */
const cut = (ids: string[], limit: number, got: string[][]) =>
  Array.from({ length: got.length }, (_, i) => ids.slice(i * limit, (i + 1) * limit));

describe("trace partitions", () => {
  it("spreads the traces over every partition", () => {
    expect(new Set(all.map((t) => tracePartition(t.traceId))).size).toBe(TRACE_PARTITIONS);
    // Ties that cross partitions: traces of one start second live in several partitions.
    const firstSecond = all.filter((t) => t.startMs === base);
    expect(new Set(firstSecond.map((t) => tracePartition(t.traceId))).size).toBeGreaterThan(1);
  });

  for (const sort of ["start", "cost", "duration"] as const) {
    it(`lists by ${sort} across partitions in exactly the order and pages of one sorted list, ties included`, async () => {
      const want = expected({ sort });
      expect(want).toHaveLength(TRACES);
      for (const limit of [1, 7, 50, 240, 500]) {
        const got = await pages(reader, { sort, limit });
        expect(got.flat()).toEqual(want);
        expect(got).toEqual(cut(want, limit, got));
      }
    });
  }

  it("keeps the merged order under every filter an index serves, with since/until and a cursor", async () => {
    const window = { since: base + 10_000, until: base + 40_000 };
    const inWindow = (t: TraceListItem) => t.startMs >= window.since && t.startMs <= window.until;
    const cases: [TraceFilter, (t: TraceListItem) => boolean][] = [
      [{ status: "error" }, (t) => t.status === "error"],
      [{ model: "gpt-4.1-mini" }, (t) => t.models.includes("gpt-4.1-mini")],
      [{ anomaly: "high_latency" }, (t) => t.anomalyTypes.includes("high_latency")],
      [{ kind: "research" }, (t) => t.researchId !== undefined],
      [window, inWindow],
      [{ ...window, model: "gemini-2.5-flash" }, (t) => inWindow(t) && t.models.includes("gemini-2.5-flash")],
      [{ sort: "cost", model: "gpt-4.1" }, (t) => t.models.includes("gpt-4.1")],
      [{ sort: "duration", anomaly: "error" }, (t) => t.anomalyTypes.includes("error")],
    ];
    for (const [filter, keep] of cases) {
      const want = expected(filter, keep);
      expect(want.length, JSON.stringify(filter)).toBeGreaterThan(0);
      const got = await pages(reader, { ...filter, limit: 9 });
      expect(got.flat(), JSON.stringify(filter)).toEqual(want);
      expect(got, JSON.stringify(filter)).toEqual(cut(want, 9, got));
    }
  });

  it("resumes from a cursor cut by the scan limit (a page short of matches) without losing or repeating a trace", async () => {
    const short = createTraceReader(redis, { prefix, maxScan: 13 });
    const filter: TraceFilter = { sort: "cost", model: "gpt-4.1", limit: 5 };
    const got = await pages(short, filter);
    expect(got.some((page) => page.length < 5 && page !== got.at(-1))).toBe(true);
    expect(got.flat()).toEqual(expected(filter, (t) => t.models.includes("gpt-4.1")));
  });

  it("lists anomalies across partitions newest first, equal detection times by member, as one log would", async () => {
    const member = (a: Anomaly) => anomalyMember(a.traceId, a.spanId, a.type);
    const want = [...anomalies]
      .sort((a, b) => Date.parse(b.detectedAt) - Date.parse(a.detectedAt) || (member(a) < member(b) ? 1 : -1))
      .map(member);
    expect(want.length).toBeGreaterThan(100);
    expect((await reader.listAnomalies({ limit: 1_000 })).map(member)).toEqual(want);
    expect((await reader.listAnomalies({ limit: 10 })).map(member)).toEqual(want.slice(0, 10));
    const latency = want.filter((m) => m.endsWith("|high_latency"));
    expect((await reader.listAnomalies({ type: "high_latency", limit: 1_000 })).map(member)).toEqual(latency);
  });

  it("aggregates cost statistics over every partition's traces in the window, the newest first when truncated", async () => {
    const window = { since: base, until: base + 20_000 };
    const inWindow = all.filter((t) => t.startMs >= window.since && t.startMs <= window.until);
    const stats = await reader.costStats(window);
    expect(stats.traces).toBe(inWindow.length);
    expect(stats.calls).toBe(inWindow.reduce((n, t) => n + t.calls.length, 0));
    expect(stats.inputTokens).toBe(inWindow.reduce((n, t) => n + t.inputTokens, 0));
    const capped = await createTraceReader(redis, { prefix, maxStatsTraces: 10 }).costStats(window);
    const newest = expected({}, (t) => t.startMs <= window.until).slice(0, 10);
    const newestTokens = all.filter((t) => newest.includes(t.traceId)).reduce((n, t) => n + t.inputTokens, 0);
    expect(capped).toMatchObject({ traces: 10, truncated: true, inputTokens: newestTokens });
  });
});
