// Loaded before anything else so every module below runs traced.
import { startTracing } from "@tracelane/tracing";

export const tracing = startTracing({ serviceName: "synthesis-worker" });
