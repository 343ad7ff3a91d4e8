import { Redis, type RedisOptions } from "ioredis";
import { redactUrl } from "./env.js";

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

/** Redis did not become ready in time; the message names the URL (password hidden) and the last error. */
export class RedisUnavailableError extends Error {
  override readonly name = "RedisUnavailableError";
  constructor(
    readonly url: string,
    readonly timeoutMs: number,
    readonly lastError: string | undefined,
  ) {
    super(
      `Redis at ${redactUrl(url)} did not answer within ${timeoutMs / 1000} s${lastError ? ` (${lastError})` : ""}; ` +
        "start Redis there or point REDIS_URL at one that runs",
    );
  }
}

/** Resolves once the connection is ready, or rejects with a RedisUnavailableError after timeoutMs. */
export async function waitForRedis(redis: Redis, timeoutMs = 10_000, urlForMessage?: string): Promise<void> {
  if (redis.status === "ready") return;
  const { host, port, tls } = redis.options;
  const url = urlForMessage ?? `${tls ? "rediss" : "redis"}://${host ?? "127.0.0.1"}:${port ?? 6379}`;
  await new Promise<void>((resolve, reject) => {
    let lastError: string | undefined;
    const timer = setTimeout(() => {
      cleanup();
      reject(new RedisUnavailableError(url, timeoutMs, lastError));
    }, timeoutMs);
    const onReady = () => {
      cleanup();
      resolve();
    };
    const onError = (err: Error) => {
      lastError = err.message;
    };
    const cleanup = () => {
      clearTimeout(timer);
      redis.off("ready", onReady);
      redis.off("error", onError);
    };
    redis.on("ready", onReady);
    redis.on("error", onError);
  });
}

/** QUIT when connected (bounded), else drop the connection: a Redis that is down must not hold a shutdown. */
export async function closeRedis(redis: Redis, timeoutMs = 2_000): Promise<void> {
  if (redis.status === "ready") {
    await Promise.race([redis.quit().catch(() => undefined), new Promise((resolve) => setTimeout(resolve, timeoutMs).unref())]);
  }
  redis.disconnect();
}
