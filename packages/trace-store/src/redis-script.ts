import { createHash } from "node:crypto";
import type { ChainableCommander } from "ioredis";
import type { RedisClient } from "@tracelane/runtime";

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

  /** Queue on a pipeline; pair with `execWithScripts` so a NOSCRIPT reply reloads and retries. */
  queue(pipeline: ChainableCommander, keys: readonly string[], args: readonly Arg[]): void {
    pipeline.evalsha(this.sha, keys.length, ...keys, ...args);
  }
}

/**
 * Build and exec a pipeline that uses `scripts`. If Redis lost the scripts (restart, SCRIPT FLUSH)
 * they are loaded and the whole pipeline runs again, so the queued commands must be idempotent.
 * Returns each command's result; the first command error is thrown.
 */
export async function execWithScripts(
  redis: RedisClient,
  scripts: readonly RedisScript[],
  build: (pipeline: ChainableCommander) => void,
): Promise<unknown[]> {
  for (let attempt = 0; ; attempt++) {
    const pipeline = redis.pipeline();
    build(pipeline);
    const replies = (await pipeline.exec()) ?? [];
    const noScript = replies.some(([err]) => isNoScript(err));
    if (noScript && attempt === 0) {
      for (const s of scripts) await redis.script("LOAD", s.lua);
      continue;
    }
    const failed = replies.find(([err]) => err);
    if (failed) throw failed[0];
    return replies.map(([, value]) => value);
  }
}
