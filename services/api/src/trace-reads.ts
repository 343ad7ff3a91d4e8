import { envBoolean } from "@tracelane/runtime";
import type { UntracedRootRule } from "@tracelane/tracing";

/**
 * TRACELANE_TRACE_READS (default false): whether read and health requests start traces of their
 * own. One definition, read by env.ts (validated with the rest at boot) and by instrumentation.ts,
 * which starts tracing before the environment is parsed.
 */
export const TRACE_READS_ENV = envBoolean(false);

/**
 * The requests that start no trace unless they carry a sampled traceparent: every GET and HEAD
 * (GET /v1/*, /healthz, /readyz, /metrics, /ui/*, /admin/*, /openapi.json, static assets). Without
 * this, every poll of a research, every health check and every console page would be a trace in
 * GET /v1/traces beside the researches.
 */
export const isReadRequest: UntracedRootRule = ({ method }) => method === "GET" || method === "HEAD";

/**
 * The api's untraced-roots rule for startServiceTracing: isReadRequest unless TRACELANE_TRACE_READS
 * is on. A bad value counts as the default here; the boot's env parse then stops the api naming it.
 */
export function untracedRootsFromEnv(source: NodeJS.ProcessEnv = process.env): UntracedRootRule | undefined {
  const parsed = TRACE_READS_ENV.safeParse(source.TRACELANE_TRACE_READS?.trim());
  return parsed.success && parsed.data ? undefined : isReadRequest;
}
