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
  envClusterNodes,
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
export {
  createRedis,
  batch,
  type BatchReplies,
  waitForRedis,
  closeRedis,
  describeRedis,
  isCluster,
  RedisUnavailableError,
  type RedisClient,
  type RedisRole,
  type RedisTarget,
} from "./redis.js";
export { hashTag, partitionOf, partitionTags, slotOf, spreadTag } from "./key-slot.js";
export { comesBefore, indexSize, mergeDesc, type IndexEntry } from "./partition-merge.js";
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
