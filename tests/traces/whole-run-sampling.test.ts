import { describe, expect, it } from "vitest";
import { ONE_OF_EACH } from "@tracelane/launcher";
import { sumUsd } from "@tracelane/pricing";
import type { ResearchView } from "@tracelane/research-store";
import { waitFor } from "@tracelane/testkit";
import { apiClient } from "../support/api-client.js";
import { fetchTrace, type TraceResponse } from "../support/collected-traces.js";
import { usePipeline } from "../support/pipeline-stack.js";
import { spansOfResearch } from "../support/spans.js";

/**
 * OTEL_TRACES_SAMPLER=parentbased_traceidratio with ARG=0.1: the api's root span decides once per research and
 * every worker follows the sampled flag carried in job data, so about a tenth of the researches are traced
 * completely (every stage, claim job and tool run) and the rest not at all, never in part. The research records' costs do not depend on spans.
 */
const RESEARCHES = 200;

const run = usePipeline({
  replicas: { ...ONE_OF_EACH },
  // Three claims each: every research still fans out, with tools, at a fraction of the calls.
  env: { OTEL_TRACES_SAMPLER: "parentbased_traceidratio", OTEL_TRACES_SAMPLER_ARG: "0.1", COLLECTOR_BLOCK_MS: "100", MAX_CLAIMS: "3" },
});

describe("sampling keeps whole runs", () => {
  it("traces about 10% of researches completely and the rest not at all, with exact costs either way", async () => {
    const api = apiClient(run.stack.apiUrl!);
    const submitted: Array<{ id: string; traceId: string }> = [];
    for (let i = 0; i < RESEARCHES; i += 20) {
      const batch = await Promise.all(
        Array.from({ length: 20 }, (_, k) => api.submit({ query: `Sampling question ${i + k}: how do glaciers move?` })),
      );
      for (const r of batch) {
        expect(r.status).toBe(202);
        submitted.push(r.body);
      }
    }
    const views: ResearchView[] = [];
    for (const r of submitted) views.push(await api.waitForFinal(r.id, 90_000));
    expect(views.every((v) => v.status === "completed")).toBe(true);

    // Let the workers' batch exporters flush and the collector drain: read once nothing changed for 1.5 s.
    const snapshot = async () => {
      const stats = (await (await fetch(`${run.stack.collectorUrl}/stats`)).json()) as {
        tracesStored: number;
        stream: { length: number; pending: number };
      };
      return `${stats.tracesStored}/${stats.stream.length}/${stats.stream.pending}`;
    };
    let last = "";
    let since = Date.now();
    await waitFor(
      async () => {
        const now = await snapshot();
        if (now !== last) [last, since] = [now, Date.now()];
        return Date.now() - since >= 1_500 && now.endsWith("/0") ? true : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 100, what: "the span stream to settle" },
    );

    const traced: Array<{ view: ResearchView; trace: TraceResponse }> = [];
    for (const view of views) {
      const got = await fetchTrace(run.stack.apiUrl!, view.traceId!);
      if (got) traced.push({ view, trace: got.body });
    }
    // Binomial(200, 0.1): 20 expected, sd 4.2; these bounds are more than 3.5 sd wide on either side.
    expect(traced.length).toBeGreaterThanOrEqual(5);
    expect(traced.length).toBeLessThanOrEqual(40);

    for (const { view, trace } of traced) {
      // Complete: every span of the run (every stage, claim and tool), one root, every parent present.
      expect(view.stages.factcheck.claims, view.id).toHaveLength(3);
      expect(trace.summary.spanCount, view.id).toBe(spansOfResearch(view));
      expect(trace.tree).toHaveLength(1);
      expect(trace.summary.researchId).toBe(view.id);
      expect(trace.summary.costUsd).toBeCloseTo(view.totals.costUsd, 9);
    }
    // The unsampled ones left nothing in the collector's store (no partial trace under their ids).
    const stored = await run.redis.keys(`${run.stack.prefixes.traces}:*`);
    const sampledIds = new Set(traced.map((t) => t.view.traceId!));
    for (const view of views.filter((v) => !sampledIds.has(v.traceId!))) {
      expect(
        stored.some((k) => k.includes(view.traceId!)),
        `a partial trace for unsampled research ${view.id}`,
      ).toBe(false);
    }
    // Costs are recorded whether traced or not (from the provider's usage, not from spans): every stage priced,
    // the total exactly their sum, and for a traced run exactly what its trace says (checked above).
    for (const view of views) {
      const stages = Object.values(view.stages);
      for (const s of stages) expect(s.costUsd, `${view.id} ${s.model}`).toBeGreaterThan(0);
      expect(view.totals.costUsd, view.id).toBe(sumUsd(stages.map((s) => s.costUsd!)));
    }
  }, 240_000);
});
