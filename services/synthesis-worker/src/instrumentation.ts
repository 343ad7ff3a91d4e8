// Loaded before anything else so every module below runs traced.
import { startServiceTracing } from "@tracelane/tracing";

export const tracing = startServiceTracing({ serviceName: "synthesis-worker" });
