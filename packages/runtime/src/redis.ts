import { Redis, type RedisOptions } from "ioredis";

export type RedisRole =
  /** BullMQ workers and blocking readers: wait through outages, never give up a command. */
  | "worker"
  /** Request-path producers: fail fast so an HTTP caller gets an error instead of a hang. */
  | "producer";

export function createRedis(url: string, role: RedisRole, extra: RedisOptions = {}): Redis {
  const options: RedisOptions =
    role === "worker"
      ? { maxRetriesPerRequest: null, enableReadyCheck: true }
      : { maxRetriesPerRequest: 1, enableOfflineQueue: false, connectTimeout: 2_000 };
  const redis = new Redis(url, {
    ...options,
    // Reconnect forever with a capped delay; a restarted Redis must not need a restarted service.
    retryStrategy: (times) => Math.min(50 * 2 ** Math.min(times, 6), 2_000),
    lazyConnect: false,
    ...extra,
  });
  // ioredis emits 'error' on every failed reconnect; without a listener Node would crash.
  redis.on("error", () => {});
  return redis;
}

/** Resolves once the connection is ready (or rejects after timeoutMs). */
export async function waitForRedis(redis: Redis, timeoutMs = 10_000): Promise<void> {
  if (redis.status === "ready") return;
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`Redis not ready after ${timeoutMs} ms (status ${redis.status}); check REDIS_URL`));
    }, timeoutMs);
    const onReady = () => {
      cleanup();
      resolve();
    };
    const cleanup = () => {
      clearTimeout(timer);
      redis.off("ready", onReady);
    };
    redis.on("ready", onReady);
  });
}
