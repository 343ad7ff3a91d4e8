import { describe, expect, it } from "vitest";
import { buildTree, flattenTree, resolveStages } from "../src/tree.js";
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
