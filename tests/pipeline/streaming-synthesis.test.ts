import { describe, expect, it } from "vitest";
import { SpanKind } from "@opentelemetry/api";
import { ATTR_GEN_AI_REQUEST_STREAM, ATTR_GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK } from "@tracelane/tracing/attributes";
import { hrMs, spansOfResearch, waitForTrace } from "../support/spans.js";
import { useTracedPipeline } from "../support/traced-pipeline-fixture.js";

// The report takes 800 ms to write, so its pieces arrive over several of the writer's 100 ms batches.
const ctx = useTracedPipeline({
  simulator: { latency: { baseMs: 0, jitterMs: 0, models: { "deepseek-v3.2": { baseMs: 800, jitterMs: 0 } } } },
});

describe("the synthesis streams", () => {
  it("emits synthesis.delta events that add up to the report, and its chat span records the time to the first chunk", async () => {
    const { body } = await ctx.api.submit({ query: "What would a four-day work week do to productivity?" });
    const events = await ctx.api.events(body.id);
    const view = await ctx.pipeline.waitForFinal(body.id);
    expect(view.status, JSON.stringify(view.error)).toBe("completed");

    // Between the synthesis' start and its checkpoint, in order: the report, piece by piece.
    const types = events.map((e) => e.event);
    const started = types.lastIndexOf("stage.started");
    const completed = types.lastIndexOf("stage.completed");
    const deltas = events.filter((e) => e.event === "synthesis.delta");
    expect(deltas.length).toBeGreaterThanOrEqual(3);
    for (const d of deltas) {
      const at = events.indexOf(d);
      expect(at).toBeGreaterThan(started);
      expect(at).toBeLessThan(completed);
      expect(d.data).toMatchObject({ stage: "synthesis", status: "running", data: { attempt: 1 } });
    }
    const text = deltas.map((d) => (d.data.data as { text: string }).text).join("");
    expect(text).toBe(view.result!.finalReport);
    expect(text.length).toBeGreaterThan(50);

    // The chat span says it streamed and how long the reader waited for the first words (seconds).
    const trace = await waitForTrace(ctx.tracing, body.traceId, spansOfResearch(view));
    const chat = trace.one("chat deepseek-v3.2", SpanKind.CLIENT);
    expect(chat.attributes[ATTR_GEN_AI_REQUEST_STREAM]).toBe(true);
    const ttfc = chat.attributes[ATTR_GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK] as number;
    expect(ttfc).toBeGreaterThan(0);
    expect(ttfc * 1000).toBeLessThan(hrMs(chat.endTime) - hrMs(chat.startTime));
    // The simulator sends the first piece after a share of its 800 ms, the rest spread over the remainder.
    expect(ttfc * 1000).toBeLessThan(700);
    // Streamed usage is still on the span and on the record.
    expect(view.stages.synthesis.usage!.outputTokens).toBeGreaterThan(20);
    // Calls that do not stream say nothing about streaming.
    expect(trace.one("chat gpt-4.1", SpanKind.CLIENT).attributes[ATTR_GEN_AI_REQUEST_STREAM]).toBeUndefined();
  });
});
