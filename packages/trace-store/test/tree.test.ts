import { describe, expect, it } from "vitest";
import { buildTree, flattenTree, resolveStages } from "../src/tree.js";
import { renderReplay } from "../src/replay.js";
import type { TraceListItem } from "../src/types.js";
import type { SpanRecord } from "../src/types.js";
import { ATTR_STAGE } from "@tracelane/pipeline";

const span = (
  spanId: string,
  parentSpanId: string | undefined,
  kind: SpanRecord["kind"],
  startMs: number,
  attributes: SpanRecord["attributes"] = {},
): SpanRecord => ({
  traceId: "t".repeat(32),
  spanId,
  ...(parentSpanId ? { parentSpanId } : {}),
  name: spanId,
  kind,
  service: "svc",
  startMs,
  endMs: startMs + 10,
  durationMs: 10,
  status: "ok",
  attributes,
});

const trace = [
  span("root", undefined, "server", 0),
  span("pub-a", "root", "producer", 1),
  span("proc-a", "pub-a", "consumer", 5),
  span("chat-a", "proc-a", "client", 6, { [ATTR_STAGE]: "analysis" }),
  span("http-a", "chat-a", "client", 7),
  span("pub-f", "proc-a", "producer", 20),
  span("proc-f", "pub-f", "consumer", 25),
  span("chat-f", "proc-f", "client", 26, { [ATTR_STAGE]: "factcheck" }),
];

describe("resolveStages", () => {
  it("gives queue spans the stage of the model call below them and HTTP attempts the stage above them", () => {
    const stages = resolveStages(trace);
    expect(Object.fromEntries(stages)).toEqual({
      root: undefined,
      "pub-a": "analysis",
      "proc-a": "analysis",
      "chat-a": "analysis",
      "http-a": "analysis",
      "pub-f": "factcheck",
      "proc-f": "factcheck",
      "chat-f": "factcheck",
    });
  });
});

describe("buildTree", () => {
  it("nests spans under their parents in start order with depths", () => {
    const flat = flattenTree(buildTree([...trace].reverse()));
    expect(flat.map((n) => `${n.depth}:${n.spanId}`)).toEqual([
      "0:root",
      "1:pub-a",
      "2:proc-a",
      "3:chat-a",
      "4:http-a",
      "3:pub-f",
      "4:proc-f",
      "5:chat-f",
    ]);
  });

  it("shows spans whose parent is missing as roots instead of losing them", () => {
    const tree = buildTree(trace.filter((s) => s.spanId !== "pub-f"));
    expect(tree.map((n) => n.spanId)).toEqual(["root", "proc-f"]);
  });

  it("survives a parent cycle in malformed input", () => {
    const tree = buildTree([span("a", "b", "internal", 0), span("b", "a", "internal", 1)]);
    expect(
      flattenTree(tree)
        .map((n) => n.spanId)
        .sort(),
    ).toEqual(["a", "b"]);
  });
});

describe("deep traces (a parent chain sent over OTLP by anyone)", () => {
  // 20,000 levels: far past what a recursive walk survives on Node's default stack.
  const DEPTH = 20_000;
  const chain = (kind: SpanRecord["kind"]) =>
    Array.from({ length: DEPTH }, (_, i) =>
      span(`s${i}`, i === 0 ? undefined : `s${i - 1}`, kind, i, i === DEPTH - 1 ? { [ATTR_STAGE]: "synthesis" } : {}),
    );

  it("builds, flattens and resolves stages of a 20,000-span parent chain without recursion", () => {
    const spans = chain("producer");
    const stages = resolveStages(spans);
    // Every producer above the one stage-carrying span finds it nearest below.
    expect(stages.get("s0")).toBe("synthesis");
    expect(stages.get(`s${DEPTH - 2}`)).toBe("synthesis");
    const flat = flattenTree(buildTree(spans, stages));
    expect(flat).toHaveLength(DEPTH);
    expect(flat.map((n) => n.depth)).toEqual(Array.from({ length: DEPTH }, (_, i) => i));
  });

  it("lets internal spans under a chain inherit the stage of their nearest ancestor", () => {
    const spans = chain("internal").map((s, i): SpanRecord =>
      i === 0 ? { ...s, attributes: { [ATTR_STAGE]: "analysis" } } : { ...s, attributes: {} },
    );
    const stages = resolveStages(spans);
    expect(stages.get(`s${DEPTH - 1}`)).toBe("analysis");
    expect(new Set(stages.values())).toEqual(new Set(["analysis"]));
  });

  it("keeps the nearest level's rule: a queue span over two stages at the same depth gets neither", () => {
    const spans = [
      span("pub", undefined, "producer", 0),
      span("a", "pub", "internal", 1),
      span("b", "pub", "internal", 2),
      span("a1", "a", "client", 3, { [ATTR_STAGE]: "analysis" }),
      span("b1", "b", "client", 4, { [ATTR_STAGE]: "factcheck" }),
      span("c", "pub", "internal", 5),
      span("c1", "c", "internal", 6),
      span("c2", "c1", "client", 7, { [ATTR_STAGE]: "synthesis" }),
    ];
    expect(resolveStages(spans).get("pub")).toBeUndefined();
    // One stage at the nearest level wins over a different one further down.
    expect(resolveStages(spans.filter((s) => s.spanId !== "b1")).get("pub")).toBe("analysis");
  });

  it("replays a 20,000-span chain in output linear in spans (indentation stops growing, the depth is printed)", () => {
    const spans = chain("internal");
    const summary = {
      traceId: "t".repeat(32),
      rootName: "s0",
      status: "ok",
      durationMs: DEPTH,
      costUsd: 0,
      unpricedCalls: 0,
      inputTokens: 0,
      outputTokens: 0,
      spanCount: DEPTH,
      droppedSpans: 0,
    } as TraceListItem;
    const text = renderReplay({ summary, spans, tree: buildTree(spans), anomalies: [] });
    const lines = text.trimEnd().split("\n");
    expect(lines).toHaveLength(DEPTH + 1);
    expect(lines[1]).toMatch(/^✓ s0 /);
    expect(lines[41]).toMatch(/^ {80}✓ s40 /);
    expect(lines[DEPTH]).toMatch(new RegExp(`^ {80}\\[depth ${DEPTH - 1}\\] ✓ s${DEPTH - 1} `));
    expect(Math.max(...lines.map((l) => l.length))).toBeLessThan(200);
  });
});
