import { describe, expect, inject, it } from "vitest";
import { freePort, spawnService, type ServiceProcess } from "@tracelane/testkit";

describe("a service whose OTLP endpoint does not answer", () => {
  it("warns once, naming the endpoint, however many exports fail", async () => {
    // Nothing listens here: every export fails.
    const endpoint = `http://127.0.0.1:${await freePort()}`;
    let api: ServiceProcess | undefined;
    try {
      api = spawnService("api", "services/api/src/index.ts", {
        REDIS_URL: inject("redisUrl"),
        PORT: String(await freePort()),
        HOST: "127.0.0.1",
        LOG_FORMAT: "json",
        LOG_LEVEL: "info",
        OTEL_EXPORTER_OTLP_ENDPOINT: endpoint,
        OTEL_EXPORTER_OTLP_TIMEOUT: "500",
        OTEL_BSP_SCHEDULE_DELAY: "50",
        TRACELANE_SPAN_STREAM_ENABLED: "false",
        // Reads start no trace by default; this test needs spans from its cheap GETs.
        TRACELANE_TRACE_READS: "true",
      });
      await api.waitForOutput(/"msg":"api listening"/, 60_000);
      const port = (
        JSON.parse(
          api
            .output()
            .split("\n")
            .find((l) => l.includes('"api listening"'))!,
        ) as { port: number }
      ).port;
      const request = () => fetch(`http://127.0.0.1:${port}/v1/research/nope`).then((r) => r.arrayBuffer());

      await request();
      await api.waitForOutput(/spans cannot be exported/, 20_000);
      // Several more batches, each exported (and failing) on its own.
      for (let i = 0; i < 4; i++) {
        await request();
        await new Promise((r) => setTimeout(r, 700));
      }
      const warnings = api
        .output()
        .split("\n")
        .filter((l) => l.includes("spans cannot be exported"))
        .map((l) => JSON.parse(l) as Record<string, unknown>);
      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toMatchObject({ level: 40, service: "api", endpoint });
      expect(String(warnings[0]!.msg)).toContain(`OTLP endpoint ${endpoint}`);
      expect(warnings[0]).not.toHaveProperty("trace_id");
    } finally {
      await api?.stop("SIGTERM");
    }
  }, 90_000);
});
