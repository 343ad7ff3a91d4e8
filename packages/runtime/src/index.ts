export {
  EnvError,
  parseEnv,
  envBoolean,
  envInt,
  envNumber,
  envUrl,
  envOptionalString,
  REDIS_URL_DEFAULT,
} from "./env.js";
export { createRedis, waitForRedis, type RedisRole } from "./redis.js";
export { Shutdown, type ShutdownLogger } from "./shutdown.js";
export { readJsonFile } from "./json-file.js";
export { createKeepAliveFetch, type KeepAliveFetchOptions } from "./keep-alive-fetch.js";
