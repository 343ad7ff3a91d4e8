import { Redis } from "ioredis";

/**
 * Run `use` on a one-off connection to 127.0.0.1:port and always close it: a probe left open keeps the
 * vitest worker alive. No retries and no offline queue, so a dead node fails the call at once instead of
 * hanging until a wait's deadline.
 */
export async function withProbe<T>(port: number, use: (redis: Redis) => Promise<T>): Promise<T> {
  const probe = new Redis(port, "127.0.0.1", {
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    enableOfflineQueue: false,
    connectTimeout: 2_000,
    // A stopped (not dead) node would otherwise hold the caller forever.
    commandTimeout: 5_000,
  });
  probe.on("error", () => {});
  try {
    try {
      await probe.connect();
    } catch (err) {
      throw new Error(`could not connect to redis node 127.0.0.1:${port}: ${(err as Error).message}`, { cause: err });
    }
    return await use(probe);
  } finally {
    probe.disconnect();
  }
}
