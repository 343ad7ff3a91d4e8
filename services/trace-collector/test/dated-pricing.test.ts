import { describe, expect, it } from "vitest";
import { PriceTable } from "@tracelane/pricing";
import type { SpanRecord } from "@tracelane/trace-store";
import { ATTR_GEN_AI_REQUEST_MODEL, ATTR_GEN_AI_USAGE_INPUT_TOKENS, ATTR_GEN_AI_USAGE_OUTPUT_TOKENS } from "@tracelane/tracing/attributes";
import { summarizeTrace } from "../src/assemble/summary.js";
import { modelCallOf } from "../src/pricing.js";

/** house-model halves its price on 2026-03-01. */
const table = (outputPer1M = 2) =>
  PriceTable.parse({
    models: [
      {
        model: "house-model",
        provider: "me",
        prices: [
          { effectiveFrom: "2026-01-01", inputPer1M: 2, outputPer1M: 4 },
          { effectiveFrom: "2026-03-01", inputPer1M: 1, outputPer1M },
        ],
        source: "contract",
        asOf: "2026-03-01",
      },
    ],
  });

function chatSpan(id: string, startIso: string, model = "house-model"): SpanRecord {
  const startMs = Date.parse(startIso);
  return {
    traceId: "a".repeat(32),
    spanId: id.padEnd(16, "0"),
    name: `chat ${model}`,
    kind: "client",
    service: "analysis-worker",
    startMs,
    endMs: startMs + 100,
    durationMs: 100,
    status: "ok",
    attributes: {
      [ATTR_GEN_AI_REQUEST_MODEL]: model,
      [ATTR_GEN_AI_USAGE_INPUT_TOKENS]: 1_000_000,
      [ATTR_GEN_AI_USAGE_OUTPUT_TOKENS]: 1_000_000,
    },
  };
}

const priced = (span: SpanRecord, prices: PriceTable): SpanRecord => ({ ...span, call: modelCallOf(span, prices)! });

describe("the collector's pricing of dated prices", () => {
  it("prices each call by the price in force at its span's start, whenever it is ingested, and records the table's version", () => {
    const prices = table();
    const before = modelCallOf(chatSpan("b", "2026-02-28T23:59:59.999Z"), prices)!;
    const after = modelCallOf(chatSpan("c", "2026-03-01T00:00:00.000Z"), prices)!;
    expect(before).toMatchObject({ costUsd: 6, priceVersion: prices.version });
    expect(after).toMatchObject({ costUsd: 3, priceVersion: prices.version });
  });

  it("records no version on an unpriced call", () => {
    const call = modelCallOf(chatSpan("d", "2026-03-02T00:00:00Z", "my-finetune"), table())!;
    expect(call.costUsd).toBeNull();
    expect(call).not.toHaveProperty("priceVersion");
  });

  it("lists the versions a trace's calls were priced with, sorted and once each, and each call's on its CallStat", () => {
    const v1 = table(2);
    const v2 = table(2.5);
    const spans = [
      priced(chatSpan("e", "2026-03-02T00:00:00Z"), v2),
      priced(chatSpan("f", "2026-03-02T00:00:01Z"), v1),
      priced(chatSpan("g", "2026-03-02T00:00:02Z"), v2),
      priced(chatSpan("h", "2026-03-02T00:00:03Z", "my-finetune"), v1),
    ];
    const summary = summarizeTrace("a".repeat(32), spans, 0);
    expect(summary.priceVersions).toEqual([v1.version, v2.version].sort());
    expect(summary.calls.map((c) => c.priceVersion)).toEqual([v2.version, v1.version, v2.version, undefined]);
    expect(summary.costUsd).toBe(3.5 + 3 + 3.5);
  });
});
