import type { TestProject } from "vitest/node";
import { startRedisServer, type EphemeralRedis } from "@tracelane/testkit";

// One private redis-server per test run; every test isolates itself with its own key/queue prefix.
let redis: EphemeralRedis | undefined;

export async function setup(project: TestProject) {
  redis = await startRedisServer();
  project.provide("redisUrl", redis.url);
}

export async function teardown() {
  await redis?.destroy();
}
