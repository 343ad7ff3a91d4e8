import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import {
  createServiceMetrics,
  GEN_AI_DURATION_BUCKETS,
  GEN_AI_TOKEN_BUCKETS,
  HTTP_DURATION_BUCKETS,
  METRICS,
  metricsDocTable,
  prometheusLabel,
  prometheusName,
} from "@tracelane/metrics";
import { bucketOf, parseMetricsText } from "@tracelane/metrics/testing";

describe("OpenTelemetry -> Prometheus names", () => {
  it("turns dots into underscores and adds the unit in words, as the Collector's translator does", () => {
    expect(prometheusName("gen_ai.client.operation.duration", "s", "histogram")).toBe("gen_ai_client_operation_duration_seconds");
    expect(prometheusName("http.server.request.duration", "s", "histogram")).toBe("http_server_request_duration_seconds");
    expect(prometheusName("rpc.server.duration", "ms", "histogram")).toBe("rpc_server_duration_milliseconds");
    expect(prometheusName("system.io", "By", "counter")).toBe("system_io_bytes_total");
    expect(prometheusName("broken.metric.speed", "km/h", "gauge")).toBe("broken_metric_speed_km_per_hour");
    expect(prometheusName("network.rate", "By/s", "gauge")).toBe("network_rate_bytes_per_second");
  });

  it("drops annotations in braces (a count has no unit) and adds _total to counters once", () => {
    expect(prometheusName("gen_ai.client.token.usage", "{token}", "histogram")).toBe("gen_ai_client_token_usage");
    expect(prometheusName("system.network.packets", "{packet}", "counter")).toBe("system_network_packets_total");
    expect(prometheusName("requests.total", "{request}", "counter")).toBe("requests_total");
    expect(prometheusName("tracelane.gen_ai.client.cost.usd", "{USD}", "counter")).toBe("tracelane_gen_ai_client_cost_usd_total");
  });

  it("does not repeat a unit the name already has, gives unit-1 gauges _ratio, and keeps names from starting with a digit", () => {
    expect(prometheusName("process.cpu.time.seconds", "s", "counter")).toBe("process_cpu_time_seconds_total");
    expect(prometheusName("system.cpu.utilization", "1", "gauge")).toBe("system_cpu_utilization_ratio");
    expect(prometheusName("system.cpu.load", "1", "counter")).toBe("system_cpu_load_total");
    expect(prometheusName("5xx.responses", "", "counter")).toBe("_5xx_responses_total");
  });

  it("turns attributes into labels by replacing invalid characters", () => {
    expect(prometheusLabel("gen_ai.request.model")).toBe("gen_ai_request_model");
    expect(prometheusLabel("gen_ai.token.type")).toBe("gen_ai_token_type");
    expect(prometheusLabel("http.response.status_code")).toBe("http_response_status_code");
    expect(prometheusLabel("tracelane.stage")).toBe("tracelane_stage");
    expect(prometheusLabel("a..b")).toBe("a_b");
    expect(prometheusLabel("0day")).toBe("key_0day");
  });

  it("gives the catalog's metrics the names the README and the example queries use", () => {
    expect(METRICS.tokenUsage.prometheus).toBe("gen_ai_client_token_usage");
    expect(METRICS.operationDuration.prometheus).toBe("gen_ai_client_operation_duration_seconds");
    expect(METRICS.tokenUsage.labelNames).toEqual([
      "gen_ai_operation_name",
      "gen_ai_provider_name",
      "gen_ai_request_model",
      "tracelane_stage",
      "gen_ai_token_type",
    ]);
    expect(METRICS.httpDuration.labelNames).toEqual(["http_request_method", "http_route", "http_response_status_code"]);
    const names = Object.values(METRICS).map((m) => m.prometheus);
    expect(new Set(names).size).toBe(names.length);
    for (const m of Object.values(METRICS)) {
      expect(m.prometheus).toMatch(/^[a-zA-Z_:][a-zA-Z0-9_:]*$/);
      for (const l of m.labelNames) expect(l).toMatch(/^[a-zA-Z_][a-zA-Z0-9_]*$/);
      if (m.type === "counter") expect(m.prometheus).toMatch(/_total$/);
    }
  });
});

describe("bucket boundaries", () => {
  it("are the semantic conventions' explicit boundaries", () => {
    // gen-ai-metrics.md: powers of 4 from 1 to 67108864, and 10 ms doubling to 81.92 s.
    expect(GEN_AI_TOKEN_BUCKETS).toEqual(Array.from({ length: 14 }, (_, i) => 4 ** i));
    expect(GEN_AI_DURATION_BUCKETS).toEqual(Array.from({ length: 14 }, (_, i) => Number((0.01 * 2 ** i).toFixed(2))));
    expect(HTTP_DURATION_BUCKETS).toEqual([0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10]);
    expect(METRICS.tokenUsage.buckets).toBe(GEN_AI_TOKEN_BUCKETS);
    expect(METRICS.operationDuration.buckets).toBe(GEN_AI_DURATION_BUCKETS);
  });

  it("count a value on a boundary in that bucket and one just above in the next, in the exposed text", async () => {
    const metrics = createServiceMetrics({ processMetrics: false });
    const tokens = metrics.histogram(METRICS.tokenUsage);
    const call = { "gen_ai.request.model": "gpt-4.1", "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai" };
    tokens.observe({ ...call, "gen_ai.token.type": "input" }, 16);
    tokens.observe({ ...call, "gen_ai.token.type": "input" }, 17);
    tokens.observe({ ...call, "gen_ai.token.type": "output" }, 67108865);
    const duration = metrics.histogram(METRICS.operationDuration);
    duration.observe(call, 0.64);
    duration.observe(call, 0.641);

    const scrape = await parseMetricsText(await metrics.registry.metrics());
    const input = scrape.histogram("gen_ai_client_token_usage", { gen_ai_token_type: "input", gen_ai_request_model: "gpt-4.1" });
    expect(input.count).toBe(2);
    expect(input.sum).toBe(33);
    expect(input.buckets["4"]).toBe(0);
    expect(input.buckets["16"]).toBe(1);
    expect(input.buckets["64"]).toBe(2);
    expect(Object.keys(input.buckets)).toEqual([...GEN_AI_TOKEN_BUCKETS.map(String), "+Inf"]);
    const output = scrape.histogram("gen_ai_client_token_usage", { gen_ai_token_type: "output" });
    expect(output.buckets["67108864"]).toBe(0);
    expect(output.buckets["+Inf"]).toBe(1);

    const d = scrape.histogram("gen_ai_client_operation_duration_seconds", { gen_ai_provider_name: "openai" });
    expect(d.buckets["0.32"]).toBe(0);
    expect(d.buckets["0.64"]).toBe(1);
    expect(d.buckets["1.28"]).toBe(2);
    expect(bucketOf(0.64, GEN_AI_DURATION_BUCKETS)).toBe("0.64");
    expect(bucketOf(0.641, GEN_AI_DURATION_BUCKETS)).toBe("1.28");
    expect(bucketOf(100, GEN_AI_DURATION_BUCKETS)).toBe("+Inf");
  });
});

describe("createServiceMetrics", () => {
  it("serves process metrics and its tracing's export counts per destination, read at scrape time", async () => {
    const destinations = {
      redis: { exportedSpans: 5, droppedSpans: 1, failedExports: 0 },
      otlp: { exportedSpans: 3, droppedSpans: 0, failedExports: 2 },
    };
    const metrics = createServiceMetrics({ tracingStats: () => ({ destinations }) });
    let scrape = await parseMetricsText(await metrics.registry.metrics());
    expect(scrape.type("process_cpu_seconds_total")).toBe("counter");
    expect(scrape.type("nodejs_eventloop_lag_seconds")).toBe("gauge");
    expect(
      scrape.value("tracelane_tracing_spans_total", { tracelane_export_destination: "redis", tracelane_span_outcome: "exported" }),
    ).toBe(5);
    expect(scrape.value("tracelane_tracing_spans_total", { tracelane_span_outcome: "dropped" })).toBe(1);
    expect(scrape.value("tracelane_tracing_failed_exports_total", { tracelane_export_destination: "otlp" })).toBe(2);

    destinations.redis.exportedSpans = 9;
    scrape = await parseMetricsText(await metrics.registry.metrics());
    expect(
      scrape.value("tracelane_tracing_spans_total", { tracelane_export_destination: "redis", tracelane_span_outcome: "exported" }),
    ).toBe(9);
  });

  it("leaves a gauge whose read fails out of the scrape and counts the failure, instead of failing the scrape", async () => {
    const metrics = createServiceMetrics({ processMetrics: false });
    let fail = true;
    metrics.gaugeFrom(METRICS.researches, async () => {
      if (fail) throw new Error("redis is down");
      return [[{ "tracelane.research.status": "completed" }, 2]];
    });
    let scrape = await parseMetricsText(await metrics.registry.metrics());
    expect(scrape.series("tracelane_researches")).toEqual([]);
    // Collected concurrently with the failing read, so a scrape shows the failures of the ones before it.
    scrape = await parseMetricsText(await metrics.registry.metrics());
    expect(scrape.series("tracelane_researches")).toEqual([]);
    expect(scrape.value("tracelane_metrics_collect_errors_total", { tracelane_metric_name: "tracelane_researches" })).toBe(1);
    fail = false;
    scrape = await parseMetricsText(await metrics.registry.metrics());
    expect(scrape.value("tracelane_researches", { tracelane_research_status: "completed" })).toBe(2);
  });
});

describe("price table info", () => {
  it("reports 1 for the version in force, read at each scrape, and only that one", async () => {
    let version = "aaaaaaaaaaaa";
    const metrics = createServiceMetrics({ processMetrics: false, priceVersion: () => version });
    let scrape = await parseMetricsText(await metrics.registry.metrics());
    expect(scrape.series("tracelane_price_table_info")).toEqual([{ labels: { tracelane_price_version: "aaaaaaaaaaaa" }, value: 1 }]);
    version = "bbbbbbbbbbbb";
    scrape = await parseMetricsText(await metrics.registry.metrics());
    expect(scrape.series("tracelane_price_table_info")).toEqual([{ labels: { tracelane_price_version: "bbbbbbbbbbbb" }, value: 1 }]);
  });

  it("is absent where nothing is priced", async () => {
    const scrape = await parseMetricsText(await createServiceMetrics({ processMetrics: false }).registry.metrics());
    expect(scrape.series("tracelane_price_table_info")).toEqual([]);
  });
});

describe("README", () => {
  it("lists exactly the catalog's metrics, and its example queries use their names", () => {
    const readme = readFileSync(new URL("../../../README.md", import.meta.url), "utf8");
    expect(readme).toContain(metricsDocTable());
    for (const name of [
      "tracelane_gen_ai_client_cost_usd_total",
      "gen_ai_client_operation_duration_seconds_bucket",
      "tracelane_queue_depth",
    ]) {
      expect(readme).toMatch(new RegExp(`\\(${name}\\b`));
    }
  });
});
