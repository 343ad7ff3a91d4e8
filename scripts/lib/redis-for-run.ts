import { Redis } from "ioredis";
import { redactUrl } from "@tracelane/runtime";
import { startRedisServer, type EphemeralRedis } from "@tracelane/testkit";

/** How long an explicit REDIS_URL gets to answer before the run stops. */
export const REDIS_CONNECT_TIMEOUT_MS = 5_000;

/** REDIS_URL was set and did not answer: nothing is started in its place. */
export class RedisUnreachableError extends Error {
  override readonly name = "RedisUnreachableError";
  constructor(
    readonly url: string,
    reason: string,
  ) {
    super(
      `REDIS_URL ${redactUrl(url)} did not answer within ${REDIS_CONNECT_TIMEOUT_MS / 1000} s (${reason}); ` +
        "start Redis there, or unset REDIS_URL to have a private redis-server started for this run",
    );
  }
}

/**
 * An explicit REDIS_URL is used or the run fails naming it: silently starting a private Redis
 * instead would leave the services on data nobody else sees. Only an unset (or blank) REDIS_URL
 * starts a private redis-server, so a fresh machine with redis-server on PATH needs nothing else.
 */
export async function redisForRun(log: (msg: string) => void): Promise<{ url: string; ephemeral?: EphemeralRedis }> {
  const url = process.env.REDIS_URL?.trim();
  if (url) {
    log(`connecting to redis at ${redactUrl(url)}`);
    const probe = new Redis(url, {
      lazyConnect: true,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
      connectTimeout: REDIS_CONNECT_TIMEOUT_MS,
    });
    probe.on("error", () => {});
    try {
      const timeout = new Promise<never>((_, reject) => setTimeout(() => reject(new Error("no answer")), REDIS_CONNECT_TIMEOUT_MS).unref());
      await Promise.race([probe.connect().then(() => probe.ping()), timeout]);
      log(`using Redis at ${redactUrl(url)}`);
      return { url };
    } catch (err) {
      throw new RedisUnreachableError(url, err instanceof Error ? err.message : String(err));
    } finally {
      probe.disconnect();
    }
  }
  const ephemeral = await startRedisServer({ appendonly: true });
  log(`REDIS_URL is unset: started a private redis-server at ${ephemeral.url} (removed on exit)`);
  return { url: ephemeral.url, ephemeral };
}
