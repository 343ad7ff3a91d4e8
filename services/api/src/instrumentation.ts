// Loaded first by index.ts so the SDK is registered before express, ioredis or bullmq are imported.
import { startTracing } from "@tracelane/tracing";

export const tracing = startTracing({ serviceName: "api" });
