import { startServiceTracing } from "@tracelane/tracing";

/**
 * Tracing for the collector itself, started before anything else loads. The Redis span path is
 * switched off: the collector reads that stream, and exporting its own spans into it would feed
 * every batch back as a new one. Its spans go to OTLP (Jaeger) only, when an endpoint is set.
 */
export const tracing = startServiceTracing({
  serviceName: "trace-collector",
  env: { ...process.env, TRACELANE_SPAN_STREAM_ENABLED: "false" },
});
