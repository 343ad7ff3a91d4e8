import { resolveStages, type SpanRecord } from "@tracelane/trace-store";
import { ATTR_CLAIM_COUNT, ATTR_STAGE } from "@tracelane/pipeline";
import { describe, expect, it } from "vitest";
import { DEFAULT_RULES, withSettings } from "../src/anomalies/registry.js";
import { evaluateTrace } from "../src/anomalies/evaluate.js";
import { summarizeTrace } from "../src/assemble/summary.js";

const traceId = "f".repeat(32);

/** A span of the research trace as the services record it, `ms` after the trace's start. */
function span(
  spanId: string,
  parentSpanId: string | undefined,
  kind: SpanRecord["kind"],
  ms: number,
  over: Partial<SpanRecord> = {},
): SpanRecord {
  return {
    traceId,
    spanId: spanId.padEnd(16, "0"),
    ...(parentSpanId ? { parentSpanId: parentSpanId.padEnd(16, "0") } : {}),
    name: spanId,
    kind,
    service: "svc",
    startMs: 1_000 + ms,
    endMs: 1_000 + ms + 10,
    durationMs: 10,
    status: "ok",
    attributes: {},
    ...over,
  };
}
/** A job's CONSUMER span: the stage processor sets the stage on it. */
const job = (id: string, parent: string, stage: string, ms: number) =>
  span(id, parent, "consumer", ms, { name: `process research-${stage}`, attributes: { [ATTR_STAGE]: stage } });
const chat = (id: string, parent: string, stage: string, ms: number, inputTokens: number, outputTokens: number) =>
  span(id, parent, "client", ms, {
    name: "chat m",
    attributes: { [ATTR_STAGE]: stage },
    call: { model: "m", inputTokens, outputTokens, cachedInputTokens: 0, costUsd: 0.001 },
  });
const agent = (id: string, parent: string, ms: number, claims: number, links: string[] = []) =>
  span(id, parent, "internal", ms, {
    name: "invoke_agent factcheck",
    attributes: { [ATTR_CLAIM_COUNT]: claims },
    ...(links.length > 0 ? { links: links.map((l) => ({ traceId, spanId: l.padEnd(16, "0") })) } : {}),
  });

/**
 * A research: analysis (one call), the fact-check's first visit publishing two claim jobs, the claims'
 * calls (the second claim two tool turns), the fan-in linked to both claims, synthesis (one call).
 */
const research = (): SpanRecord[] => [
  span("root", undefined, "server", 0, { name: "POST /v1/research" }),
  job("janalysis", "root", "analysis", 10),
  chat("canalysis", "janalysis", "analysis", 11, 1_000, 400),
  job("jfact1", "janalysis", "factcheck", 30),
  agent("afact1", "jfact1", 31, 2),
  job("jclaim0", "afact1", "factcheck", 40),
  chat("cclaim0", "jclaim0", "factcheck", 41, 600, 100),
  job("jclaim1", "afact1", "factcheck", 42),
  chat("cclaim1a", "jclaim1", "factcheck", 43, 800, 150),
  chat("cclaim1b", "jclaim1", "factcheck", 50, 900, 50),
  job("jfact2", "janalysis", "factcheck", 60),
  agent("afact2", "jfact2", 61, 2, ["jclaim0", "jclaim1"]),
  job("jsynthesis", "jfact2", "synthesis", 70),
  chat("csynthesis", "jsynthesis", "synthesis", 71, 2_000, 700),
];
const without = (spans: SpanRecord[], ...ids: string[]) => spans.filter((s) => !ids.some((id) => s.spanId === id.padEnd(16, "0")));
const flowOf = (spans: SpanRecord[]) => summarizeTrace(traceId, spans, 0).tokenFlow!;

describe("the token flow of a trace summary", () => {
  it("lists each stage in pipeline order with its calls' sums, its largest call and the growth from the stage before", () => {
    expect(flowOf(research())).toEqual([
      { stage: "analysis", calls: 1, inputTokens: 1_000, outputTokens: 400, maxCallInputTokens: 1_000, growth: null, complete: true },
      // The fan-out stage sums its claims' calls; its largest call read 900 of the 400 handed over.
      { stage: "factcheck", calls: 3, inputTokens: 2_300, outputTokens: 300, maxCallInputTokens: 900, growth: 2.25, complete: true },
      { stage: "synthesis", calls: 1, inputTokens: 2_000, outputTokens: 700, maxCallInputTokens: 2_000, growth: 6.67, complete: true },
    ]);
  });

  it("keeps pipeline order when a later stage's call started first, and puts stages the pipeline does not name last", () => {
    const spans = research().map((s) => (s.spanId.startsWith("csynthesis") ? { ...s, startMs: 900, endMs: 910 } : s));
    spans.push(job("jreview", "jsynthesis", "review", 80), chat("creview", "jreview", "review", 81, 800, 20));
    expect(flowOf(spans).map((s) => [s.stage, s.growth])).toEqual([
      ["analysis", null],
      ["factcheck", 2.25],
      ["synthesis", 6.67],
      ["review", 1.14],
    ]);
  });

  it("marks a stage incomplete while a call's job span, a claim's span or the fan-in has not arrived", () => {
    const complete = (spans: SpanRecord[]) => Object.fromEntries(flowOf(spans).map((s) => [s.stage, s.complete]));
    expect(complete(without(research(), "jsynthesis"))).toEqual({ analysis: true, factcheck: true, synthesis: false });
    expect(complete(without(research(), "jclaim1"))).toEqual({ analysis: true, factcheck: false, synthesis: true });
    // Both claims are in, but not the fan-in that says they are all there is.
    expect(complete(without(research(), "jfact2", "afact2"))).toEqual({ analysis: true, factcheck: false, synthesis: true });
  });

  it("lists a stage none of whose spans has arrived yet as empty and incomplete, between the stages that have", () => {
    const early = without(research(), "jfact1", "afact1", "jclaim0", "cclaim0", "jclaim1", "cclaim1a", "cclaim1b", "jfact2", "afact2");
    expect(flowOf(early).map((s) => [s.stage, s.calls, s.complete, s.growth])).toEqual([
      ["analysis", 1, true, null],
      ["factcheck", 0, false, null],
      ["synthesis", 1, true, 5],
    ]);
  });

  it("raises context_bloat only once the bloated stage and the stages before it have all arrived", () => {
    // At 2.5 × and no prompt tokens: synthesis (2,000) is over against analysis (1,000) and the fact-check (750);
    // the fact-check's largest claim call (900) is not (1,000). What changes below is only whether synthesis is judged.
    const rules = withSettings(DEFAULT_RULES, { context_bloat: { factor: 2.5, promptTokens: 0 } });
    const bloat = (spans: SpanRecord[]) => {
      const summary = summarizeTrace(traceId, spans, 0);
      const { anomalies } = evaluateTrace(spans, summary, resolveStages(spans), rules, "2026-01-01T00:00:00.000Z");
      return anomalies.filter((a) => a.type === "context_bloat").map((a) => [a.stage, a.value, a.threshold]);
    };
    expect(bloat(without(research(), "jclaim1"))).toEqual([]);
    expect(bloat(without(research(), "jsynthesis"))).toEqual([]);
    expect(
      bloat(without(research(), "jfact1", "afact1", "jclaim0", "cclaim0", "jclaim1", "cclaim1a", "cclaim1b", "jfact2", "afact2")),
    ).toEqual([]);
    expect(bloat(research())).toEqual([["synthesis", 2_000, 750]]);
  });
});
