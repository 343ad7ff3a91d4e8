import { freePort, spawnService, waitFor, type ServiceProcess } from "@tracelane/testkit";
import { createTraceReader } from "@tracelane/trace-store";
import { afterAll, describe, expect, inject, it } from "vitest";
import { pipelineTrace, type SyntheticSpan } from "../src/testing/synthetic.js";
import { cleanup, connect, uniquePrefix, writeSpanStream } from "./support.js";

const url = inject("redisUrl");
const redis = connect(url);
const prefix = uniquePrefix("process");
const stream = `${prefix}-spans`;
let proc: ServiceProcess | undefined;

afterAll(async () => {
  // SIGTERM: tsx forwards it to the service (a SIGKILL would only kill tsx and orphan the service).
  await proc?.stop("SIGTERM");
  await cleanup(redis, prefix);
  await redis.quit();
});

async function start(port: number): Promise<ServiceProcess> {
  const p = spawnService("trace-collector", "services/trace-collector/src/index.ts", {
    REDIS_URL: url,
    PORT: String(port),
    TRACELANE_SPAN_STREAM: stream,
    TRACELANE_TRACE_PREFIX: prefix,
    TRACELANE_ANOMALY_STREAM: `${prefix}-anomalies`,
    COLLECTOR_BLOCK_MS: "100",
    OTEL_SDK_DISABLED: "true",
    LOG_LEVEL: "info",
  });
  await p.waitForOutput(/trace-collector listening/, 30_000);
  return p;
}

async function write(traces: SyntheticSpan[][]): Promise<void> {
  await writeSpanStream(redis, stream, traces, { spansPerEntry: 20 }); // the default shards, as the process reads
}

describe("trace-collector process", () => {
  it("assembles every trace written while it was stopped, before and after a restart", async () => {
    const reader = createTraceReader(redis, { prefix });
    const complete = async (traces: SyntheticSpan[][]) => {
      for (const t of traces) {
        const got = await reader.getTrace(t[0]!.traceId);
        if (got?.summary.spanCount !== t.length) return false;
      }
      return true;
    };
    const port = await freePort();

    const first = Array.from({ length: 25 }, () => pipelineTrace());
    await write(first); // nothing is running yet
    proc = await start(port);
    await waitFor(() => complete(first), { what: "first traces assembled", timeoutMs: 20_000 });

    expect(await proc.stop("SIGTERM")).toBe(0);
    expect(proc.output()).toMatch(/shutting down/);
    const second = Array.from({ length: 25 }, () => pipelineTrace());
    await write(second); // written while the collector is stopped
    proc = await start(port);
    await waitFor(() => complete(second), { what: "second traces assembled", timeoutMs: 20_000 });

    const stats = (await (await fetch(`http://127.0.0.1:${port}/stats`)).json()) as { stream: unknown };
    expect(stats.stream).toMatchObject({ pending: 0, length: 0 });
    expect((await reader.listTraces({ limit: 500 })).traces).toHaveLength(50);
  });

  it("refuses to start with a bad TRACELANE_SPAN_STREAM_SHARDS, naming the variable and what is allowed", async () => {
    const p = spawnService("trace-collector#bad-shards", "services/trace-collector/src/index.ts", {
      REDIS_URL: url,
      PORT: "0",
      TRACELANE_SPAN_STREAM_SHARDS: "65",
      OTEL_SDK_DISABLED: "true",
    });
    expect(await p.exited).toBe(1);
    expect(p.output()).toMatch(/TRACELANE_SPAN_STREAM_SHARDS: must be a whole number from 1 to 64 \(got "65"\)/);
  });
});
