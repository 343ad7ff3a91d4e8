import { describe, expect, it } from "vitest";
import { buildTree, flattenTree, spanDepths } from "../src/tree.js";
import type { SpanRecord } from "../src/types.js";

const span = (spanId: string, parentSpanId?: string, startMs = 0): SpanRecord => ({
  traceId: "t".repeat(32),
  spanId,
  ...(parentSpanId ? { parentSpanId } : {}),
  name: spanId,
  kind: "internal",
  service: "svc",
  startMs,
  endMs: startMs + 1,
  durationMs: 1,
  status: "ok",
  attributes: {},
});

describe("spanDepths", () => {
  it("counts from the root whatever order the spans come in, and from an orphan whose parent has not arrived", () => {
    const spans = [span("c", "b"), span("b", "a"), span("a"), span("y", "x-missing"), span("z", "y")];
    expect(Object.fromEntries(spanDepths(spans))).toEqual({ a: 0, b: 1, c: 2, y: 0, z: 1 });
  });

  it("makes the members of a parent cycle roots, and what hangs below them deeper", () => {
    const spans = [span("p", "q"), span("q", "p"), span("k", "p"), span("self", "self")];
    expect(Object.fromEntries(spanDepths(spans))).toEqual({ p: 0, q: 0, k: 1, self: 0 });
  });

  it("is linear on a 50,000-span chain (no recursion, each span walked once)", () => {
    const spans = Array.from({ length: 50_000 }, (_, i) => span(`s${i}`, i > 0 ? `s${i - 1}` : undefined, i));
    expect(spanDepths(spans.reverse()).get("s49999")).toBe(49_999);
  });
});

describe("buildTree with a depth limit", () => {
  it("cuts every span deeper than the limit, with everything below it, and shows none of them as roots", () => {
    const spans = [...Array.from({ length: 10 }, (_, i) => span(`s${i}`, i > 0 ? `s${i - 1}` : undefined, i)), span("side", "s2", 20)];
    const flat = flattenTree(buildTree(spans, undefined, 3));
    expect(flat.map((n) => n.spanId)).toEqual(["s0", "s1", "s2", "s3", "side"]);
    expect(Math.max(...flat.map((n) => n.depth))).toBe(3);
  });
});
