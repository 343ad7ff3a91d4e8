import { randomUUID } from "node:crypto";
import { SERVICES, type ServiceName } from "./catalog.js";

/** One replica of every service: the whole pipeline with its collector and simulator. */
export const ONE_OF_EACH = Object.fromEntries(SERVICES.map((s) => [s.name, 1])) as Record<ServiceName, number>;

/**
 * Key prefixes unique to one run (a test file, a benchmark, a load run) and the env that points
 * every service at them, so several runs can share one Redis without seeing each other's data.
 */
export function isolatedRun(label: string) {
  const run = `${label}-${randomUUID().slice(0, 8)}`;
  // `spans` is the span stream's base name: its shards are @tracelane/tracing's spanStreamShards(spans, n).
  const prefixes = { queue: run, research: `${run}:research`, spans: `${run}:spans`, traces: `${run}:traces` };
  return {
    prefixes,
    env: {
      TRACELANE_QUEUE_PREFIX: prefixes.queue,
      TRACELANE_RESEARCH_PREFIX: prefixes.research,
      TRACELANE_SPAN_STREAM: prefixes.spans,
      TRACELANE_TRACE_PREFIX: prefixes.traces,
      TRACELANE_RATE_LIMIT_PREFIX: `${run}:ratelimit`,
      // These runs send from one address far faster than a team would (pnpm load: 2,000 researches at
      // concurrency 64): the api's rate limits and queue depth cap stay off; their own tests set them.
      RATE_LIMIT_PER_MINUTE: "0",
      RATE_LIMIT_NEW_RESEARCH_PER_MINUTE: "0",
      MAX_QUEUE_DEPTH: "0",
      // Test, benchmark and load runs inject faults with [[sim:fault=…]] in their queries; `pnpm start` and
      // `pnpm demo` leave the simulator's directives off, so a public query cannot make the provider fail.
      LLM_SIM_DIRECTIVES: "true",
    },
  };
}
