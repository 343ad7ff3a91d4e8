import { Redis } from "ioredis";
import { startRedisServer, type EphemeralRedis } from "@tracelane/testkit";

/**
 * Use REDIS_URL when it answers; otherwise start a private redis-server, so a
 * fresh machine with redis-server on PATH needs nothing else.
 */
export async function redisForRun(log: (msg: string) => void): Promise<{ url: string; ephemeral?: EphemeralRedis }> {
  const url = process.env.REDIS_URL;
  if (url) {
    const probe = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 1_000 });
    probe.on("error", () => {});
    try {
      await probe.connect();
      await probe.ping();
      log(`using Redis at ${url}`);
      return { url };
    } catch {
      log(`REDIS_URL ${url} is not reachable; starting a private redis-server instead`);
    } finally {
      probe.disconnect();
    }
  }
  const ephemeral = await startRedisServer({ appendonly: true });
  log(`started a private redis-server at ${ephemeral.url}`);
  return { url: ephemeral.url, ephemeral };
}
