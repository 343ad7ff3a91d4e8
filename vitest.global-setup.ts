import type { TestProject } from "vitest/node";
import { buildConsole } from "@tracelane/console/build";
import { startRedisServer, type EphemeralRedis } from "@tracelane/testkit";

// One private redis-server per test run; every test isolates itself with its own key/queue prefix.
let redis: EphemeralRedis | undefined;

export async function setup(project: TestProject) {
  // The api serves the web console from its build (packages/console/dist); browser tests load it.
  await buildConsole({ ifStale: true });
  redis = await startRedisServer();
  project.provide("redisUrl", redis.url);
}

export async function teardown() {
  await redis?.destroy();
}
