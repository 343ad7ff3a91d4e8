import { isolatedRun, ONE_OF_EACH } from "@tracelane/launcher";
import { startStack, type Stack, type StackOptions } from "@tracelane/testkit";

/** A full pipeline as OS processes on the test run's Redis, isolated by unique prefixes. */
export async function startPipeline(
  redisUrl: string,
  opts: { replicas?: StackOptions["replicas"]; env?: Record<string, string>; serviceEnv?: StackOptions["serviceEnv"] } = {},
): Promise<Stack & { prefixes: { queue: string; research: string; spans: string; traces: string } }> {
  const { prefixes, env: isolated } = isolatedRun("e2e");
  const stack = await startStack({
    redisUrl,
    // Every service of the catalog (so every stage's worker) but the collector, which tests that read traces add.
    replicas: opts.replicas ?? { ...ONE_OF_EACH, "trace-collector": 0 },
    env: {
      ...isolated,
      JOB_ATTEMPTS: "3",
      JOB_BACKOFF_MS: "100",
      LLM_MAX_RETRIES: "1",
      LLM_RETRY_BASE_MS: "20",
      // Fault directives make single requests fail; keep them from opening circuits for other tests.
      BREAKER_THRESHOLD: "1000",
      LOG_LEVEL: "warn",
      ...opts.env,
    },
    ...(opts.serviceEnv ? { serviceEnv: opts.serviceEnv } : {}),
    ...(process.env.E2E_ECHO ? { echo: (svc: string, line: string) => console.log(`[${svc}] ${line}`) } : {}),
  });
  return Object.assign(stack, { prefixes });
}
