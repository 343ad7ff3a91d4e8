export {
  EnvError,
  parseEnv,
  withoutBlankValues,
  envBoolean,
  envInt,
  envNumber,
  envUrl,
  envOptionalString,
  envRedisUrl,
  redisUrlSchema,
  redactUrl,
  serviceEnvShape,
  redisEnvShape,
  REDIS_URL_DEFAULT,
  LOG_LEVELS,
  LOG_FORMATS,
  type EnvSource,
  type LogLevel,
  type LogFormat,
  type ServiceEnv,
  type RedisEnv,
} from "./env.js";
export { BootError } from "./boot-error.js";
export { createRedis, waitForRedis, closeRedis, RedisUnavailableError, type RedisRole } from "./redis.js";
export { Shutdown, type ShutdownLogger } from "./shutdown.js";
export { watchParent, exitsWithParent } from "./parent-watch.js";
export {
  runService,
  bootService,
  listen,
  bootFailureLine,
  type ServiceDefinition,
  type ServiceContext,
  type ServiceLogger,
  type BootedService,
} from "./run-service.js";
export { readJsonFile } from "./json-file.js";
export { createKeepAliveFetch, type KeepAliveFetchOptions } from "./keep-alive-fetch.js";
