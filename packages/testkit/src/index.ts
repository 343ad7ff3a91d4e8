export { freePort } from "./ports.js";
export { waitFor } from "./wait.js";
export { startRedisServer, type EphemeralRedis } from "./redis-server.js";
export { spawnService, REPO_ROOT, type ServiceProcess } from "./processes.js";
