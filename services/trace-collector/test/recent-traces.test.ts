import type { SpanRecord } from "@tracelane/trace-store";
import { describe, expect, it } from "vitest";
import { RecentTraces } from "../src/assemble/recent-traces.js";

const spans = (n: number) => Array.from({ length: n }, (_, i) => ({ spanId: `s${i}` }) as SpanRecord);

describe("RecentTraces", () => {
  it("forgets the least recently written trace beyond its size", () => {
    const recent = new RecentTraces(2);
    recent.set("a", 1, spans(1));
    recent.set("b", 1, spans(1));
    recent.set("a", 2, spans(2)); // a is now the most recent
    recent.set("c", 1, spans(1));
    expect(recent.get("b")).toBeUndefined();
    expect(recent.get("a")?.version).toBe(2);
    expect(recent.get("c")?.version).toBe(1);
    expect(recent.size).toBe(2);
  });

  it("keeps the newer version when an older one is written late", () => {
    const recent = new RecentTraces(10);
    recent.set("t", 5, spans(5));
    recent.set("t", 3, spans(3));
    expect(recent.get("t")).toMatchObject({ version: 5 });
    expect(recent.get("t")!.spans).toHaveLength(5);
  });

  it("drops a copy older than its maximum age, and holds nothing when sized 0", () => {
    let now = 0;
    const recent = new RecentTraces(10, 1_000, () => now);
    recent.set("t", 1, spans(1));
    now = 999;
    expect(recent.get("t")).toBeDefined();
    now = 1_001;
    expect(recent.get("t")).toBeUndefined();

    const off = new RecentTraces(0);
    off.set("t", 1, spans(1));
    expect(off.get("t")).toBeUndefined();
  });
});
