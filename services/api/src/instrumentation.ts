// Loaded first by index.ts so the SDK is registered before express, ioredis or bullmq are imported.
import { startServiceTracing } from "@tracelane/tracing";

export const tracing = startServiceTracing({ serviceName: "api" });
