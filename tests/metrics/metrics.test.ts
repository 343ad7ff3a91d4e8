import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { GEN_AI_DURATION_BUCKETS, GEN_AI_TOKEN_BUCKETS } from "@tracelane/metrics";
import { bucketOf, scrapeMetrics, type Scrape } from "@tracelane/metrics/testing";
import { apiClient } from "../support/api-client.js";
import { waitForCollectedTrace } from "../support/collected-traces.js";
import { startPipeline } from "../support/pipeline-stack.js";
import { modelCallsOfResearch, spansOfResearch } from "../support/spans.js";

const STAGES = [
  { stage: "analysis", service: "analysis-worker", queue: "research-analysis", model: "gpt-4.1", provider: "openai" },
  { stage: "factcheck", service: "factcheck-worker", queue: "research-factcheck", model: "gemini-2.5-flash", provider: "gcp.gemini" },
  { stage: "synthesis", service: "synthesis-worker", queue: "research-synthesis", model: "deepseek-v3.2", provider: "deepseek" },
] as const;

let stack: Awaited<ReturnType<typeof startPipeline>>;

beforeAll(async () => {
  stack = await startPipeline(inject("redisUrl"), {
    replicas: { "llm-simulator": 1, "trace-collector": 1, api: 1, "analysis-worker": 1, "factcheck-worker": 1, "synthesis-worker": 1 },
    env: { COLLECTOR_BLOCK_MS: "100" },
  });
});

afterAll(async () => {
  await stack?.stop();
});

/** The non-cumulative count of the bucket `le` (the cumulative counts of Prometheus, differenced). */
function inBucket(buckets: Record<string, number>, bounds: readonly number[], le: string): number {
  const i = le === "+Inf" ? bounds.length : bounds.indexOf(Number(le));
  const below = i === 0 ? 0 : (buckets[String(bounds[i - 1])] ?? 0);
  return (buckets[le] ?? 0) - below;
}

/** Every bucket of the histogram holds exactly the observed values that fall in it. */
function expectBuckets(buckets: Record<string, number>, bounds: readonly number[], values: readonly number[]): void {
  const les = [...bounds.map(String), "+Inf"];
  const expected = les.map((le) => values.filter((v) => bucketOf(v, bounds) === le).length);
  expect(les.map((le) => inBucket(buckets, bounds, le))).toEqual(expected);
}

describe("/metrics after a real research", () => {
  it("collector, api and every worker expose Prometheus metrics that match the research's trace and the api's figures", async () => {
    const api = apiClient(stack.apiUrl!);
    const submitted = await api.submit({ query: "What limits the energy density of solid-state batteries?" });
    expect(submitted.status).toBe(202);
    const view = await api.waitForFinal(submitted.body.id);
    expect(view.status).toBe("completed");
    // The research's whole trace: the fact-check fans out per claim, each claim a few model calls and tool runs.
    const spanCount = spansOfResearch(view);
    const trace = await waitForCollectedTrace(stack.apiUrl!, submitted.body.traceId, spanCount);
    expect(trace.spans).toHaveLength(spanCount);
    const claims = view.stages.factcheck.claims ?? [];
    expect(claims.length).toBeGreaterThan(0);
    const chats = trace.spans.filter((s) => s.call);
    expect(chats).toHaveLength(modelCallsOfResearch(view));

    // trace-collector: GenAI metrics derived from the spans, equal to the trace and the api's view.
    const collector = await scrapeMetrics(`${stack.collectorUrl!}/metrics`);
    const tokenSum = (type: string) => collector.histogram("gen_ai_client_token_usage", { gen_ai_token_type: type }).sum;
    expect(tokenSum("input")).toBe(trace.body.summary.inputTokens);
    expect(tokenSum("output")).toBe(trace.body.summary.outputTokens);
    expect(tokenSum("input")).toBe(view.totals.inputTokens);
    expect(tokenSum("output")).toBe(view.totals.outputTokens);
    expect(collector.value("tracelane_gen_ai_client_cost_usd_total")).toBeCloseTo(view.totals.costUsd, 9);
    const durations = collector.histogram("gen_ai_client_operation_duration_seconds");
    expect(durations.count).toBe(modelCallsOfResearch(view));
    for (const st of STAGES) {
      const stageChats = chats.filter((s) => s.stage === st.stage);
      // One call for analysis and synthesis; for the fact-check, every turn of every claim.
      const calls = st.stage === "factcheck" ? claims.reduce((n, c) => n + (c.modelCalls ?? 0), 0) : 1;
      expect(stageChats, st.stage).toHaveLength(calls);
      const labels = {
        gen_ai_request_model: st.model,
        gen_ai_provider_name: st.provider,
        gen_ai_operation_name: "chat",
        tracelane_stage: st.stage,
      };
      const d = collector.histogram("gen_ai_client_operation_duration_seconds", labels);
      expect(d.count, st.stage).toBe(calls);
      expectBuckets(
        d.buckets,
        GEN_AI_DURATION_BUCKETS,
        stageChats.map((c) => c.durationMs / 1000),
      );
      // The stage row's usage is its calls' sum (a fan-out stage's: its claims').
      const usage = view.stages[st.stage].usage!;
      for (const [type, n, perCall] of [
        ["input", usage.inputTokens, stageChats.map((c) => c.call!.inputTokens)],
        ["output", usage.outputTokens, stageChats.map((c) => c.call!.outputTokens)],
      ] as const) {
        const t = collector.histogram("gen_ai_client_token_usage", { ...labels, gen_ai_token_type: type });
        expect(t, `${st.stage} ${type}`).toMatchObject({ count: calls, sum: n });
        expectBuckets(t.buckets, GEN_AI_TOKEN_BUCKETS, perCall);
      }
      expect(
        collector.value("tracelane_gen_ai_client_cost_usd_total", { gen_ai_request_model: st.model, tracelane_stage: st.stage }),
      ).toBeCloseTo(view.stages[st.stage].costUsd!, 9);
    }
    expect(collector.value("tracelane_collector_spans_total", { tracelane_span_outcome: "stored" })).toBeGreaterThanOrEqual(spanCount);
    expect(collector.histogram("tracelane_collector_ingest_lag_seconds").count).toBeGreaterThanOrEqual(spanCount);
    expect(collector.type("process_cpu_seconds_total")).toBe("counter");

    // api: empty queues afterwards, one completed research, request durations by route pattern.
    const apiMetrics = await scrapeMetrics(`${stack.apiUrl!}/metrics`);
    for (const st of STAGES) {
      for (const state of ["waiting", "active", "delayed", "failed"]) {
        const depth = apiMetrics
          .series("tracelane_queue_depth")
          .filter((s) => s.labels.tracelane_stage === st.stage && s.labels.tracelane_queue_state === state);
        expect(depth, `${st.stage} ${state}`).toEqual([
          { labels: { messaging_destination_name: st.queue, tracelane_stage: st.stage, tracelane_queue_state: state }, value: 0 },
        ]);
      }
    }
    expect(apiMetrics.value("tracelane_researches", { tracelane_research_status: "completed" })).toBe(1);
    expect(apiMetrics.value("tracelane_researches", { tracelane_research_status: "failed" })).toBe(0);
    const posted = apiMetrics.histogram("http_server_request_duration_seconds", {
      http_request_method: "POST",
      http_route: "/v1/research",
      http_response_status_code: "202",
    });
    expect(posted.count).toBe(1);
    expect(apiMetrics.histogram("http_server_request_duration_seconds", { http_route: "/v1/research/:id" }).count).toBeGreaterThan(0);
    expect(routesOf(apiMetrics).some((r) => r.includes(submitted.body.id))).toBe(false);

    // workers: one job per stage (the fact-check's own and one per claim), their durations, no retries, the model's
    // circuit closed, spans exported. The fact-check's job parking for its claims is not an attempt that ended.
    for (const st of STAGES) {
      const proc = stack.byService(st.service)[0]!;
      const w = await scrapeMetrics(`http://127.0.0.1:${proc.port}/metrics`);
      const jobs = st.stage === "factcheck" ? 1 + claims.length : 1;
      expect(w.value("tracelane_worker_jobs_total", { tracelane_stage: st.stage, tracelane_job_outcome: "completed" }), st.stage).toBe(
        jobs,
      );
      expect(w.value("tracelane_worker_jobs_total", { tracelane_job_outcome: "failed" })).toBe(0);
      expect(w.value("tracelane_worker_jobs_total", { tracelane_job_outcome: "retried" })).toBe(0);
      expect(
        w.histogram("messaging_process_duration_seconds", { messaging_destination_name: st.queue, tracelane_stage: st.stage }).count,
      ).toBe(jobs);
      expect(w.value("tracelane_gen_ai_client_retries_total")).toBe(0);
      expect(w.series("tracelane_gen_ai_client_circuit_state")).toEqual([
        {
          labels: {
            gen_ai_provider_name: st.provider,
            gen_ai_request_model: st.model,
            server_address: "127.0.0.1",
            tracelane_stage: st.stage,
          },
          value: 0,
        },
      ]);
      expect(
        w.value("tracelane_tracing_spans_total", { tracelane_export_destination: "redis", tracelane_span_outcome: "exported" }),
      ).toBeGreaterThan(0);
      expect(w.value("tracelane_tracing_spans_total", { tracelane_span_outcome: "dropped" })).toBe(0);
    }
  });
});

describe("/metrics when calls fail", () => {
  it("counts a resend inside a model call, a job that failed for good, the failed call's error type and the failed research", async () => {
    const api = apiClient(stack.apiUrl!);
    const workerUrl = (service: string) => `http://127.0.0.1:${stack.byService(service as "analysis-worker")[0]!.port}/metrics`;
    const before = {
      analysis: await scrapeMetrics(workerUrl("analysis-worker")),
      factcheck: await scrapeMetrics(workerUrl("factcheck-worker")),
      api: await scrapeMetrics(`${stack.apiUrl!}/metrics`),
    };
    // One 429 on one of the fact-check's calls (the client resends it), and a 401 on the analysis call (fails for good).
    const retried = await api.submit({
      query: "How do heat pumps work in cold climates? [[sim:fault=429;model=gemini-2.5-flash;times=1]]",
    });
    const rejected = await api.submit({ query: "How do heat pumps work in cold climates? [[sim:fault=401;model=gpt-4.1]]" });
    expect((await api.waitForFinal(retried.body.id)).status).toBe("completed");
    expect((await api.waitForFinal(rejected.body.id)).status).toBe("failed");

    const factcheck = await scrapeMetrics(workerUrl("factcheck-worker"));
    const retries = (m: Scrape) =>
      m.value("tracelane_gen_ai_client_retries_total", { gen_ai_request_model: "gemini-2.5-flash", gen_ai_provider_name: "gcp.gemini" });
    expect(retries(factcheck) - retries(before.factcheck)).toBe(1);

    const analysis = await scrapeMetrics(workerUrl("analysis-worker"));
    const jobs = (m: Scrape, outcome: string) =>
      m.value("tracelane_worker_jobs_total", { tracelane_stage: "analysis", tracelane_job_outcome: outcome });
    expect(jobs(analysis, "failed") - jobs(before.analysis, "failed")).toBe(1);
    expect(jobs(analysis, "retried") - jobs(before.analysis, "retried")).toBe(0); // an auth failure is not retried
    expect(
      analysis.histogram("messaging_process_duration_seconds", { tracelane_stage: "analysis", error_type: "provider_auth" }).count,
    ).toBe(1);

    // The collector: the failed call's duration carries its span's error.type, in a series of its own.
    const failedTrace = await waitForCollectedTrace(stack.apiUrl!, rejected.body.traceId, 5);
    const failedChat = failedTrace.spans.find((s) => s.call && s.status === "error")!;
    const collector = await scrapeMetrics(`${stack.collectorUrl!}/metrics`);
    const failedSeries = (collector.families["gen_ai_client_operation_duration_seconds"]?.data ?? []).filter(
      (s) => s.labels.error_type !== undefined,
    );
    expect(failedSeries.map((s) => s.labels)).toEqual([
      {
        gen_ai_operation_name: "chat",
        gen_ai_provider_name: "openai",
        gen_ai_request_model: "gpt-4.1",
        tracelane_stage: "analysis",
        error_type: failedChat.attributes["error.type"],
      },
    ]);
    expect(
      collector.histogram("gen_ai_client_operation_duration_seconds", { error_type: String(failedChat.attributes["error.type"]) }).count,
    ).toBe(1);
    expect(collector.value("tracelane_collector_anomalies_total", { tracelane_anomaly_type: "error" })).toBeGreaterThanOrEqual(1);

    const apiMetrics = await scrapeMetrics(`${stack.apiUrl!}/metrics`);
    const researches = (m: Scrape, status: string) => m.value("tracelane_researches", { tracelane_research_status: status });
    expect(researches(apiMetrics, "failed") - researches(before.api, "failed")).toBe(1);
    expect(researches(apiMetrics, "completed") - researches(before.api, "completed")).toBe(1);
  });
});

function routesOf(scrape: Scrape): string[] {
  const family = scrape.families["http_server_request_duration_seconds"];
  return (family?.data ?? []).map((s) => s.labels.http_route ?? "");
}
