import { ATTR_JOB_OUTCOME, createServiceMetrics, METRICS, type ServiceMetrics, type TracingStatsLike } from "@tracelane/metrics";
import { ATTR_STAGE } from "@tracelane/pipeline";
import {
  ATTR_ERROR_TYPE,
  ATTR_GEN_AI_PROVIDER_NAME,
  ATTR_GEN_AI_REQUEST_MODEL,
  ATTR_MESSAGING_DESTINATION_NAME,
  ATTR_SERVER_ADDRESS,
} from "@tracelane/tracing/attributes";
import type { ChatClient } from "./chat-client.js";
import { errorTypeOf } from "./errors.js";
import type { AttemptEnd } from "./register-worker.js";
import type { CircuitStateName } from "./resilience/model-policies.js";

/** The gauge's value per circuit state (isolated: held open by hand, so open). */
const CIRCUIT_VALUE: Record<CircuitStateName, number> = { closed: 0, "half-open": 1, open: 2, isolated: 2 };

export interface StageWorkerMetrics {
  readonly service: ServiceMetrics;
  attemptEnded(end: AttemptEnd): void;
  modelRetry(call: { model: string; provider: string }): void;
}

/**
 * A stage worker's /metrics (on its HEALTH_PORT): job attempts by outcome and their duration,
 * resends inside model calls, circuit states (read at scrape time), span exports, process metrics.
 * Model calls' tokens, cost and latency are the trace-collector's (from the spans), not counted here,
 * so a sum over every target never counts a call twice.
 */
export function createStageWorkerMetrics(o: {
  stage: string;
  queue: string;
  circuits: () => ReturnType<ChatClient["circuits"]>;
  tracingStats?: () => TracingStatsLike;
  priceVersion?: () => string;
}): StageWorkerMetrics {
  const service = createServiceMetrics({
    ...(o.tracingStats ? { tracingStats: o.tracingStats } : {}),
    ...(o.priceVersion ? { priceVersion: o.priceVersion } : {}),
  });
  const jobs = service.counter(METRICS.jobs);
  const duration = service.histogram(METRICS.jobDuration);
  const retries = service.counter(METRICS.modelRetries);
  service.gaugeFrom(METRICS.circuitState, () =>
    o.circuits().map(
      (c) =>
        [
          {
            [ATTR_GEN_AI_PROVIDER_NAME]: c.provider,
            [ATTR_GEN_AI_REQUEST_MODEL]: c.model,
            [ATTR_SERVER_ADDRESS]: c.serverAddress,
            [ATTR_STAGE]: o.stage,
          },
          CIRCUIT_VALUE[c.state],
        ] as const,
    ),
  );
  return {
    service,
    attemptEnded(end) {
      jobs.add({ [ATTR_STAGE]: o.stage, [ATTR_JOB_OUTCOME]: end.outcome });
      if (end.durationMs === undefined) return;
      duration.observe(
        {
          [ATTR_MESSAGING_DESTINATION_NAME]: o.queue,
          [ATTR_STAGE]: o.stage,
          ...(end.error ? { [ATTR_ERROR_TYPE]: errorTypeOf(end.error) } : {}),
        },
        end.durationMs / 1000,
      );
    },
    modelRetry(call) {
      retries.add({ [ATTR_GEN_AI_PROVIDER_NAME]: call.provider, [ATTR_GEN_AI_REQUEST_MODEL]: call.model, [ATTR_STAGE]: o.stage });
    },
  };
}
