export { freePort, spawnService, startStack, REPO_ROOT, type ServiceProcess, type Stack, type StackOptions } from "@tracelane/launcher";
export { waitFor } from "./wait.js";
export { startRedisServer, type EphemeralRedis } from "./redis-server.js";
export { readServerSentEvents, type ServerSentEvent } from "./sse.js";
export { modelCallsOfResearch, spansOfResearch } from "./research-shape.js";
export {
  startRedisCluster,
  type EphemeralRedisCluster,
  type RedisClusterMaster,
  type RedisClusterNode,
  type RedisClusterOptions,
  type SlotRange,
} from "./redis-cluster.js";
