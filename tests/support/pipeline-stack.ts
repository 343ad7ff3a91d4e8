import type { RedisClient } from "@tracelane/runtime";
import { afterAll, beforeAll, inject } from "vitest";
import { isolatedRun, ONE_OF_EACH } from "@tracelane/launcher";
import { createRedis } from "@tracelane/runtime";
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

/**
 * One pipeline stack for a test file: started before its tests on the run's Redis, stopped after them with
 * every key of its run deleted. Read `.stack` and `.redis` inside tests and hooks.
 */
export function usePipeline(opts: Parameters<typeof startPipeline>[1] = {}) {
  let stack: Awaited<ReturnType<typeof startPipeline>> | undefined;
  let redis: RedisClient | undefined;
  beforeAll(async () => {
    redis = createRedis(inject("redisUrl"), "producer");
    stack = await startPipeline(inject("redisUrl"), opts);
  }, 90_000);
  afterAll(async () => {
    await stack?.stop();
    if (stack && redis) {
      const keys = await redis.keys(`${stack.prefixes.queue}*`);
      for (let i = 0; i < keys.length; i += 500) await redis.del(...keys.slice(i, i + 500));
    }
    redis?.disconnect();
  });
  return {
    get stack() {
      if (!stack) throw new Error("the pipeline stack is not started yet (use it inside a test or hook)");
      return stack;
    },
    get redis() {
      if (!redis) throw new Error("the pipeline stack is not started yet (use it inside a test or hook)");
      return redis;
    },
  };
}
