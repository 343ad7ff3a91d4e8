import { EnvError } from "@tracelane/runtime";
import { describe, expect, it } from "vitest";
import { startTracing } from "../src/index.js";
import { resolveTracingConfig } from "../src/tracing-env.js";

const resolve = (env: Record<string, string>, opts: { redisUrl?: string } = {}) =>
  resolveTracingConfig({ serviceName: "svc", ...opts }, env);

describe("tracing environment", () => {
  it("defaults to parentbased_always_on, no OTLP, no stream, and batch settings sized for benchmark load", () => {
    expect(resolve({})).toEqual({
      disabled: false,
      serviceName: "svc",
      serviceVersion: undefined,
      deploymentEnvironment: "development",
      sampler: { name: "parentbased_always_on", ratio: 1 },
      otlp: undefined,
      spanStream: undefined,
      batch: { maxQueueSize: 100_000, maxExportBatchSize: 2_048, scheduledDelayMillis: 200, exportTimeoutMillis: 30_000 },
      captureContent: "none",
    });
  });

  it("lets OTEL_SERVICE_NAME override the service name and DEPLOYMENT_ENVIRONMENT win over TRACELANE_ENV", () => {
    const config = resolve({ OTEL_SERVICE_NAME: "renamed", DEPLOYMENT_ENVIRONMENT: "prod", TRACELANE_ENV: "bench" });
    expect(config.serviceName).toBe("renamed");
    expect(config.deploymentEnvironment).toBe("prod");
    expect(resolve({ TRACELANE_ENV: "bench" }).deploymentEnvironment).toBe("bench");
  });

  it("enables OTLP when an endpoint is set, prefers the traces endpoint, and obeys TRACELANE_OTLP_ENABLED", () => {
    expect(resolve({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://jaeger:4317" }).otlp?.url).toBe("http://jaeger:4317");
    expect(resolve({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://a:4317", OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "http://b:4317" }).otlp?.url).toBe(
      "http://b:4317",
    );
    expect(resolve({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://jaeger:4317", TRACELANE_OTLP_ENABLED: "false" }).otlp).toBeUndefined();
    expect(resolve({ TRACELANE_OTLP_ENABLED: "true" }).otlp?.url).toBe("http://localhost:4317");
  });

  it("enables the span stream with a Redis URL unless TRACELANE_SPAN_STREAM_ENABLED=false", () => {
    expect(resolve({ REDIS_URL: "redis://r:6379" }).spanStream).toEqual({
      redisUrl: "redis://r:6379",
      clusterNodes: undefined,
      stream: "tracelane:spans",
      shards: 4,
      maxLen: 1_000_000,
    });
    expect(resolve({ REDIS_URL: "redis://r:6379" }, { redisUrl: "redis://opt:6379" }).spanStream?.redisUrl).toBe("redis://opt:6379");
    expect(resolve({ REDIS_URL: "redis://r:6379", TRACELANE_SPAN_STREAM_ENABLED: "false" }).spanStream).toBeUndefined();
  });

  it("splits the stream into TRACELANE_SPAN_STREAM_SHARDS shards and exports to a cluster named by REDIS_CLUSTER_NODES", () => {
    expect(resolve({ REDIS_URL: "redis://r:6379", TRACELANE_SPAN_STREAM_SHARDS: "16" }).spanStream?.shards).toBe(16);
    expect(resolve({ REDIS_URL: "redis://r:6379", TRACELANE_SPAN_STREAM_SHARDS: "" }).spanStream?.shards).toBe(4);
    const onCluster = resolve({ REDIS_URL: "rediss://:pw@r:6379", REDIS_CLUSTER_NODES: "10.0.0.1:7000, 10.0.0.2:7001" }).spanStream;
    expect(onCluster).toMatchObject({
      redisUrl: "rediss://:pw@r:6379",
      clusterNodes: [
        { host: "10.0.0.1", port: 7000 },
        { host: "10.0.0.2", port: 7001 },
      ],
    });
    // Seeds alone are a Redis to export to (the URL's default lends no credentials), as for the services.
    expect(resolve({ REDIS_CLUSTER_NODES: "10.0.0.1:7000" }).spanStream).toMatchObject({
      redisUrl: "redis://127.0.0.1:6379",
      clusterNodes: [{ host: "10.0.0.1", port: 7000 }],
    });
  });

  it("treats blank values as unset", () => {
    expect(resolve({ OTEL_BSP_MAX_QUEUE_SIZE: "", OTEL_TRACES_SAMPLER: "", OTEL_EXPORTER_OTLP_ENDPOINT: "" })).toEqual(resolve({}));
  });

  it.each([
    ["OTEL_TRACES_SAMPLER", "sometimes"],
    ["OTEL_TRACES_SAMPLER_ARG", "1.5"],
    ["OTEL_EXPORTER_OTLP_ENDPOINT", "jaeger:4317"],
    ["OTEL_BSP_MAX_QUEUE_SIZE", "lots"],
    ["TRACELANE_SPAN_STREAM_MAXLEN", "0"],
    ["TRACELANE_SPAN_STREAM_SHARDS", "0"],
    ["TRACELANE_SPAN_STREAM_SHARDS", "65"],
    ["TRACELANE_SPAN_STREAM_SHARDS", "2.5"],
    ["TRACELANE_SPAN_STREAM_SHARDS", "four"],
    ["REDIS_CLUSTER_NODES", "10.0.0.1"],
    ["TRACELANE_OTLP_ENABLED", "maybe"],
    ["REDIS_URL", "localhost:6379"],
    ["OTEL_SDK_DISABLED", "disabled"],
  ])("fails at boot naming %s for a bad value", (name, value) => {
    expect(() => startTracing({ serviceName: "svc", env: { [name]: value } })).toThrow(EnvError);
    expect(() => startTracing({ serviceName: "svc", env: { [name]: value } })).toThrow(new RegExp(`${name}: `));
  });

  it("says what TRACELANE_SPAN_STREAM_SHARDS allows", () => {
    expect(() => resolve({ TRACELANE_SPAN_STREAM_SHARDS: "0" })).toThrow(
      /TRACELANE_SPAN_STREAM_SHARDS: must be a whole number from 1 to 64 \(got "0"\)/,
    );
  });

  it("rejects an export batch larger than the queue", () => {
    expect(() => resolve({ OTEL_BSP_MAX_QUEUE_SIZE: "100", OTEL_BSP_MAX_EXPORT_BATCH_SIZE: "200" })).toThrow(
      /OTEL_BSP_MAX_EXPORT_BATCH_SIZE: must not exceed/,
    );
  });
});
