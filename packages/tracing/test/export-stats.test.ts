import net from "node:net";
import { trace } from "@opentelemetry/api";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTracing, tracingStats, type TracingHandle } from "../src/index.js";

// A TCP server that accepts and never answers: the gRPC exporter hangs until its deadline,
// so the batch processor's queue fills up behind the first export.
describe("stats(): dropped spans and failed exports", () => {
  let blackhole: net.Server;
  const sockets = new Set<net.Socket>();
  let url: string;

  beforeAll(async () => {
    blackhole = net.createServer((socket) => {
      sockets.add(socket);
      socket.on("error", () => undefined);
    });
    await new Promise<void>((resolve) => blackhole.listen(0, "127.0.0.1", resolve));
    const address = blackhole.address() as net.AddressInfo;
    url = `http://127.0.0.1:${address.port}`;
  });
  afterAll(async () => {
    for (const s of sockets) s.destroy();
    await new Promise((resolve) => blackhole.close(resolve));
  });

  it("counts spans ended beyond OTEL_BSP_MAX_QUEUE_SIZE while the exporter is stuck as dropped, then failed batches", async () => {
    let tracing: TracingHandle | undefined;
    try {
      tracing = startTracing({
        serviceName: "stats-test",
        env: {
          OTEL_EXPORTER_OTLP_ENDPOINT: url,
          OTEL_EXPORTER_OTLP_TIMEOUT: "300",
          OTEL_BSP_MAX_QUEUE_SIZE: "10",
          OTEL_BSP_MAX_EXPORT_BATCH_SIZE: "5",
          OTEL_BSP_SCHEDULE_DELAY: "60000",
          OTEL_BSP_EXPORT_TIMEOUT: "2000",
        },
      });
      const tracer = trace.getTracer("stats-test");
      // 5 spans fill a batch that goes to the (stuck) exporter, 10 fill the queue, 5 overflow.
      for (let i = 0; i < 20; i++) tracer.startSpan(`span ${i}`).end();

      expect(tracing.stats()).toMatchObject({ exportedSpans: 0, droppedSpans: 5, failedExports: 0 });
      expect(tracingStats().droppedSpans).toBe(5);

      await tracing.shutdown();
      // Then every batch (5 in flight + 10 queued = 3 batches) times out against the black hole.
      expect(tracing.stats()).toEqual({
        exportedSpans: 0,
        droppedSpans: 20,
        failedExports: 3,
        destinations: { otlp: { exportedSpans: 0, droppedSpans: 20, failedExports: 3 } },
      });
      await tracing.shutdown(); // idempotent
    } finally {
      await tracing?.shutdown();
    }
  });

  it("counts spans ended after shutdown as dropped", async () => {
    const tracing = startTracing({ serviceName: "late", env: { TRACELANE_OTLP_ENABLED: "true", OTEL_EXPORTER_OTLP_ENDPOINT: url } });
    const tracer = trace.getTracer("late");
    const late = tracer.startSpan("ends after shutdown");
    const processorsShutDown = tracing.shutdown();
    late.end();
    await processorsShutDown;
    expect(tracing.stats().droppedSpans).toBe(1);
  });
});
