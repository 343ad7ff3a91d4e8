// Loaded first. The simulator stands in for an external provider: its spans (if any are
// added) go to Jaeger over OTLP only, never into the collector's stream, so the traces
// tracelane assembles contain what our own services did, as with a real provider.
import { startServiceTracing } from "@tracelane/tracing";

export const tracing = startServiceTracing({
  serviceName: "llm-simulator",
  env: { ...process.env, TRACELANE_SPAN_STREAM_ENABLED: "false" },
});
