import { createHash } from "node:crypto";
import type { ChainableCommander } from "ioredis";
import { batch, isCluster, type RedisClient } from "@tracelane/runtime";

type Arg = string | number;

const isNoScript = (err: unknown) => err instanceof Error && err.message.startsWith("NOSCRIPT");

/**
 * A Lua script run by SHA (EVALSHA) that falls back to loading itself after a
 * Redis restart flushed the script cache.
 */
export class RedisScript {
  readonly sha: string;

  constructor(
    readonly name: string,
    readonly lua: string,
  ) {
    this.sha = createHash("sha1").update(lua).digest("hex");
  }

  async run(redis: RedisClient, keys: readonly string[], args: readonly Arg[]): Promise<unknown> {
    try {
      return await redis.evalsha(this.sha, keys.length, ...keys, ...args);
    } catch (err) {
      if (!isNoScript(err)) throw err;
      return redis.eval(this.lua, keys.length, ...keys, ...args);
    }
  }

  /** Queue on a batch's commands; pair with `batchWithScripts` so a NOSCRIPT reply reloads and retries. */
  queue(commands: ChainableCommander, keys: readonly string[], args: readonly Arg[]): void {
    commands.evalsha(this.sha, keys.length, ...keys, ...args);
  }
}

/**
 * SCRIPT LOAD `scripts` where EVALSHA will look for them: the one Redis, or every master of a Cluster (a script
 * cache is per node, and a command runs on the master of its keys' slot).
 */
export async function loadScripts(redis: RedisClient, scripts: readonly RedisScript[]): Promise<void> {
  const nodes = isCluster(redis) ? redis.nodes("master") : [redis];
  await Promise.all(nodes.flatMap((node) => scripts.map((s) => node.script("LOAD", s.lua))));
}

/**
 * Build and send a `batch` (runtime: a pipeline on one Redis, auto-pipelined commands on a Cluster) that uses
 * `scripts`. If Redis lost the scripts (restart, SCRIPT FLUSH, a failed-over master) they are loaded and the whole
 * batch runs again, so the queued commands must be idempotent. Returns each command's result; the first command
 * error is thrown.
 */
export async function batchWithScripts(
  redis: RedisClient,
  scripts: readonly RedisScript[],
  build: (commands: ChainableCommander) => void,
): Promise<unknown[]> {
  for (let attempt = 0; ; attempt++) {
    const replies = await batch(redis, build);
    const noScript = replies.some(([err]) => isNoScript(err));
    if (noScript && attempt === 0) {
      await loadScripts(redis, scripts);
      continue;
    }
    const failed = replies.find(([err]) => err);
    if (failed) throw failed[0];
    return replies.map(([, value]) => value);
  }
}
