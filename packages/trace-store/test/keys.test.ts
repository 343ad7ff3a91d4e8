import { randomBytes } from "node:crypto";
import { slotOf } from "@tracelane/runtime";
import { describe, expect, it } from "vitest";
import { TRACE_PARTITIONS, traceKeys, tracePartition, type OneTraceKeys } from "../src/keys.js";
import { ANOMALY_TYPES, TRACE_STATUSES } from "../src/types.js";

/** Redis Cluster's slot count. */
const SLOTS = 16_384;
const randomTraceId = () => randomBytes(16).toString("hex");

/** Every key a trace's scripts touch, family by family (models: a few names, awkward ones included). */
const everyKeyOf = (k: OneTraceKeys): string[] => [
  ...k.perTrace,
  k.members,
  k.idxStart,
  k.idxCost,
  k.idxDuration,
  k.idxExpiry,
  k.idxDeferred,
  k.idxResearch,
  ...k.fixedIndexes,
  ...TRACE_STATUSES.map((s) => k.idxStatus(s)),
  ...["gpt-4.1", "openai/gpt 4", "{t3}", "x\uDC00y"].map((m) => k.idxModel(m)),
  ...ANOMALY_TYPES.flatMap((t) => [k.idxAnomaly(t), k.anomalyLogByType(t)]),
  k.anomalyLog,
  k.forecastPending,
  k.forecastSamples,
];

describe("trace store keys", () => {
  it("names a model with a lone surrogate (a fuzzed span's) instead of throwing, and keeps real names apart", () => {
    const keys = traceKeys("p");
    const k = keys.of(randomTraceId());
    expect(() => keys.baseline("gpt-\uD800")).not.toThrow();
    expect(keys.baseline("gpt-\uD800")).toBe(keys.baseline("gpt-\uFFFD"));
    expect(k.idxModel("x\uDC00y")).toBe(k.idxModel("x\uFFFDy"));
    expect(k.idxModel("x\uDC00y").endsWith(`:idx:model:${encodeURIComponent("x\uFFFDy")}`)).toBe(true);
    // Well-formed names, astral characters included, are encoded as they are.
    expect(keys.baseline("model-😀")).toBe(`p:baseline:${encodeURIComponent("model-😀")}`);
    expect(keys.baseline("a:b c")).toBe("p:baseline:a%3Ab%20c");
  });

  it("keeps every key of a trace, and every index it is in, in one Redis Cluster slot: its partition's", () => {
    const keys = traceKeys("tracelane:traces");
    for (let i = 0; i < 300; i++) {
      const id = randomTraceId();
      const k = keys.of(id);
      const partition = keys.partitions[tracePartition(id)]!;
      expect(k.partition).toBe(partition.partition);
      const slots = new Set(everyKeyOf(k).map(slotOf));
      expect([...slots]).toEqual([slotOf(partition.base)]);
      for (const key of everyKeyOf(k)) expect(key.startsWith(partition.base)).toBe(true);
    }
  });

  it("spreads 256 traces over all the partitions, and the partitions over the slot space", () => {
    const keys = traceKeys();
    const counts = new Array<number>(TRACE_PARTITIONS).fill(0);
    for (let i = 0; i < 256; i++) counts[keys.of(randomTraceId()).partition]!++;
    expect(counts.every((n) => n > 0)).toBe(true);
    // Partition k's slot lies in the k-th 1/TRACE_PARTITIONS of the slots: as many masters, as many partitions each.
    keys.partitions.forEach((part, k) => {
      const slot = slotOf(part.base);
      expect(Math.floor((slot * TRACE_PARTITIONS) / SLOTS)).toBe(k);
    });
  });

  it("leaves the per-model baseline lists outside the partitions (single-key commands)", () => {
    const keys = traceKeys("p");
    expect(keys.partitions.some((part) => keys.baseline("gpt-4.1").startsWith(part.base))).toBe(false);
  });

  it("gives each forecast list (stage, model) its own hash tag, with awkward model names kept inside it", () => {
    const keys = traceKeys("p");
    expect(keys.forecast("analysis", "gpt-4.1")).toBe("p:{f:analysis:gpt-4.1}:tokens");
    for (const model of ["openai/gpt 4", "{t3}", "a}b", "x\uDC00y"]) {
      const key = keys.forecast("factcheck", model);
      // The first {...} is the whole tag: a brace in a model name is encoded, so it cannot end the tag early.
      expect(key.match(/\{[^}]*\}/)![0]).toBe(`{f:factcheck:${encodeURIComponent(model.replace("\uDC00", "\uFFFD"))}}`);
    }
    expect(keys.forecast("analysis", "gpt-4.1")).not.toBe(keys.forecast("synthesis", "gpt-4.1"));
  });

  it("refuses a prefix with a brace, which would take the slot decision from the partition", () => {
    expect(() => traceKeys("{tenant}:traces")).toThrow(/brace/);
    expect(() => traceKeys("a}b")).toThrow(/brace/);
  });
});
