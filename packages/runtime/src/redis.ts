import { Cluster, Redis, type ChainableCommander, type RedisOptions } from "ioredis";
import { redactUrl } from "./env.js";

/**
 * A connection to the one Redis or to a Redis Cluster. Code that only sends commands takes this type and never
 * asks which it is: keys are hash-tagged so every script and every multi-key command stays in one slot (see
 * keySlot.ts), and batches go through `batch` rather than a pipeline, which a Cluster limits to one node.
 */
export type RedisClient = Redis | Cluster;

/** Where Redis is: REDIS_URL alone, or REDIS_CLUSTER_NODES seeds (REDIS_URL then lends credentials and TLS). */
export interface RedisTarget {
  url: string;
  clusterNodes?: readonly { host: string; port: number }[] | undefined;
}

export type RedisRole =
  /** BullMQ workers and blocking readers: wait through outages, never give up a command. */
  | "worker"
  /** Request-path producers: fail fast so an HTTP caller gets an error instead of a hang. */
  | "producer";

// Reconnect forever with a capped delay; a restarted Redis must not need a restarted service.
const retryStrategy = (times: number) => Math.min(50 * 2 ** Math.min(times, 6), 2_000);

/** The one place that decides between a single Redis and a Cluster: every service connects through it. */
export function createRedis(target: string | RedisTarget, role: RedisRole, extra: RedisOptions = {}): RedisClient {
  const { url, clusterNodes } = typeof target === "string" ? { url: target, clusterNodes: undefined } : target;
  if (clusterNodes && clusterNodes.length > 0) return createCluster(url, clusterNodes, role, extra);
  const options: RedisOptions =
    role === "worker"
      ? { maxRetriesPerRequest: null, enableReadyCheck: true }
      : { maxRetriesPerRequest: 1, enableOfflineQueue: false, connectTimeout: 2_000 };
  const redis = new Redis(url, { ...options, retryStrategy, lazyConnect: false, ...extra });
  // ioredis emits 'error' on every failed reconnect; without a listener Node would crash.
  redis.on("error", () => {});
  return redis;
}

const clusterSeeds = new WeakMap<Cluster, string>();

function createCluster(url: string, seeds: readonly { host: string; port: number }[], role: RedisRole, extra: RedisOptions): Cluster {
  const parsed = new URL(url);
  const nodeOptions: RedisOptions = {
    ...(parsed.username ? { username: decodeURIComponent(parsed.username) } : {}),
    ...(parsed.password ? { password: decodeURIComponent(parsed.password) } : {}),
    ...(parsed.protocol === "rediss:" ? { tls: {} } : {}),
    // A producer still fails a command rather than hang, but it rides out a failover: the Cluster client
    // queues commands while it learns the new slot owners (retryDelayOnFailover / OnClusterDown).
    maxRetriesPerRequest: role === "worker" ? null : 3,
    connectTimeout: role === "worker" ? 10_000 : 2_000,
    retryStrategy,
    ...extra,
  };
  const cluster = new Cluster([...seeds], {
    redisOptions: nodeOptions,
    // The names of the nodes as the cluster reports them are the ones to dial (loopback tests, one network).
    enableReadyCheck: true,
    // Commands issued in one tick are sent per node in one write: what a pipeline does on one Redis.
    enableAutoPipelining: true,
    // ioredis finds no key in these (the stream key follows a subcommand), so it would batch them by the subcommand
    // name's slot and the node that gets them answers MOVED: they go on their own.
    autoPipeliningIgnoredCommands: ["xgroup", "xinfo"],
    clusterRetryStrategy: retryStrategy,
    retryDelayOnFailover: 200,
    retryDelayOnClusterDown: 200,
    retryDelayOnTryAgain: 100,
    retryDelayOnMoved: 0,
    maxRedirections: 32,
    slotsRefreshTimeout: 2_000,
    slotsRefreshInterval: 5_000,
    scaleReads: "master",
  });
  cluster.on("error", () => {});
  clusterSeeds.set(cluster, seeds.map((n) => `${n.host}:${n.port}`).join(","));
  return cluster;
}

/** Whether `redis` is a Cluster connection (for the few places that must open per-node or per-slot connections). */
export const isCluster = (redis: RedisClient): redis is Cluster => redis instanceof Cluster;

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
        (url.startsWith("cluster ")
          ? "start the cluster or point REDIS_CLUSTER_NODES at nodes of one that runs (cluster_state:ok)"
          : "start Redis there or point REDIS_URL at one that runs"),
    );
  }
}

/** Resolves once the connection is ready, or rejects with a RedisUnavailableError after timeoutMs. */
export async function waitForRedis(redis: RedisClient, timeoutMs = 10_000, urlForMessage?: string): Promise<void> {
  if (redis.status === "ready") return;
  const url = urlForMessage ?? describeRedis(redis);
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
export async function closeRedis(redis: RedisClient, timeoutMs = 2_000): Promise<void> {
  if (redis.status === "ready") {
    await Promise.race([redis.quit().catch(() => undefined), new Promise((resolve) => setTimeout(resolve, timeoutMs).unref())]);
  }
  redis.disconnect();
}

/** `redis://host:port` of a connection, or `cluster host:port,…` of a Cluster's seeds, for messages. */
export function describeRedis(redis: RedisClient): string {
  if (isCluster(redis)) return `cluster ${clusterSeeds.get(redis) ?? "(seeds unknown)"}`;
  const { host, port, tls } = redis.options;
  return `${tls ? "rediss" : "redis"}://${host ?? "127.0.0.1"}:${port ?? 6379}`;
}

/** What a batch's exec answers: per command, its error or its reply (a pipeline's exec shape). */
export type BatchReplies = [Error | null, unknown][];

/**
 * Commands sent together and answered in order, on one Redis or a Cluster. On one Redis this is a pipeline. A
 * Cluster refuses a pipeline whose keys live on more than one node, so there each command goes on its own and
 * the client's auto-pipelining writes those of one tick to each node together: the same round trips, any keys.
 * Not a transaction on either (use MULTI over one hash tag for that).
 */
export async function batch(redis: RedisClient, build: (commands: ChainableCommander) => void): Promise<BatchReplies> {
  if (!isCluster(redis)) {
    const pipeline = redis.pipeline();
    build(pipeline);
    return ((await pipeline.exec()) ?? []) as BatchReplies;
  }
  const recorded: [string, unknown[]][] = [];
  const recorder: ChainableCommander = new Proxy({} as ChainableCommander, {
    get: (_target, name) =>
      typeof name === "string"
        ? (...args: unknown[]) => {
            recorded.push([name, args]);
            return recorder;
          }
        : undefined,
  });
  build(recorder);
  const send = redis as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>;
  const settled = await Promise.allSettled(recorded.map(([name, args]) => send[name]!(...args)));
  return settled.map((s) =>
    s.status === "fulfilled" ? [null, s.value] : [s.reason instanceof Error ? s.reason : new Error(String(s.reason)), null],
  );
}
