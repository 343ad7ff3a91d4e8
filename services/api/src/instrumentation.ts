// Loaded first by index.ts so the SDK is registered before express, ioredis or bullmq are imported.
import { startServiceTracing } from "@tracelane/tracing";
import { untracedRootsFromEnv } from "./trace-reads.js";

// Reads and health checks start no trace of their own unless TRACELANE_TRACE_READS=true.
export const tracing = startServiceTracing({ serviceName: "api", untracedRoots: untracedRootsFromEnv() });
