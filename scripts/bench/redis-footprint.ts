import { Redis } from "ioredis";
import { isolatedRun, ONE_OF_EACH, startStack } from "@tracelane/launcher";
import { ResearchStore } from "@tracelane/research-store";
import { createKeepAliveFetch } from "@tracelane/runtime";
import { SPAN_STREAM_SHARDS_DEFAULT, spanStreamShards } from "@tracelane/trace-collector";
import { traceKeys } from "@tracelane/trace-store";
import { startRedisServer, waitFor } from "@tracelane/testkit";
import { benchRawChain } from "./raw-chain.js";
import { submitResearches } from "./submit.js";
import { BenchRunError } from "./watch.js";

/** What one research (or one raw chain) costs Redis: CPU, commands, Lua time, and bytes kept, by key family. */
export interface Footprint {
  label: string;
  researches: number;
  redisCpuMsPer: number;
  commandsPer: number;
  /** EVAL/EVALSHA/FCALL calls and their server time per research. */
  scriptCallsPer: number;
  scriptUsecPer: number;
  /** The five commands with the most server time, per research. */
  topCommands: Array<{ command: string; callsPer: number; usecPer: number }>;
  /** Bytes (MEMORY USAGE) per research by key family, after every trace is assembled; empty for the raw chain. */
  bytesPer: Record<string, number>;
}

const SCRIPT_COMMANDS = new Set(["eval", "evalsha", "eval_ro", "evalsha_ro", "fcall", "fcall_ro"]);

export async function commandStats(redis: Redis): Promise<Map<string, { calls: number; usec: number }>> {
  const out = new Map<string, { calls: number; usec: number }>();
  for (const line of (await redis.info("commandstats")).split("\n")) {
    const m = /^cmdstat_([^:]+):calls=(\d+),usec=(\d+)/.exec(line.trim());
    if (m) out.set(m[1]!, { calls: Number(m[2]), usec: Number(m[3]) });
  }
  return out;
}

export async function redisCpuMs(redis: Redis): Promise<number> {
  const info = await redis.info("cpu");
  const value = (name: string) => Number(new RegExp(`^${name}:([\\d.]+)`, "m").exec(info)?.[1] ?? NaN);
  return (value("used_cpu_sys") + value("used_cpu_user")) * 1000;
}

/** Measure `run` (which does `n` units of work) on a fresh redis-server: CPU and commands from RESETSTAT on. */
async function measure(
  label: string,
  n: number,
  run: (url: string, redis: Redis) => Promise<void>,
  families?: (key: string) => string,
): Promise<Footprint> {
  const server = await startRedisServer();
  const redis = new Redis(server.url, { maxRetriesPerRequest: null });
  try {
    await redis.config("RESETSTAT");
    const cpu0 = await redisCpuMs(redis);
    await run(server.url, redis);
    const cpu = (await redisCpuMs(redis)) - cpu0;
    const stats = await commandStats(redis);
    const ours = [...stats.entries()].filter(([c]) => !["info", "config", "scan", "memory"].includes(c));
    const scripts = ours.filter(([c]) => SCRIPT_COMMANDS.has(c));
    const bytes: Record<string, number> = {};
    if (families) {
      let cursor = "0";
      do {
        const [next, keys] = await redis.scan(cursor, "COUNT", 1000);
        cursor = next;
        for (const key of keys) {
          const family = families(key);
          bytes[family] = (bytes[family] ?? 0) + ((await redis.memory("USAGE", key, "SAMPLES", 0)) ?? 0);
        }
      } while (cursor !== "0");
    }
    return {
      label,
      researches: n,
      redisCpuMsPer: cpu / n,
      commandsPer: ours.reduce((a, [, s]) => a + s.calls, 0) / n,
      scriptCallsPer: scripts.reduce((a, [, s]) => a + s.calls, 0) / n,
      scriptUsecPer: scripts.reduce((a, [, s]) => a + s.usec, 0) / n,
      topCommands: ours
        .sort((a, b) => b[1].usec - a[1].usec)
        .slice(0, 5)
        .map(([command, s]) => ({ command, callsPer: s.calls / n, usecPer: s.usec / n })),
      bytesPer: Object.fromEntries(Object.entries(bytes).map(([f, b]) => [f, b / n])),
    };
  } finally {
    redis.disconnect();
    await server.stop();
  }
}

/**
 * `researches` researches through the whole product (tracing on, collector included) with `env`, waited for until
 * every trace is assembled; then what Redis spent and keeps for them. Each run has its own redis-server.
 */
async function productFootprint(label: string, researches: number, env: Record<string, string>): Promise<Footprint> {
  const { prefixes, env: isolated } = isolatedRun("footprint");
  const traceBases = traceKeys(prefixes.traces).partitions.map((part) => part.perTraceBase);
  const spanShards = new Set(spanStreamShards(prefixes.spans, SPAN_STREAM_SHARDS_DEFAULT));
  const family = (key: string): string => {
    if (spanShards.has(key)) return "span stream";
    if (traceBases.some((base) => key.startsWith(base))) return `trace ${key.slice(key.lastIndexOf(":") + 1)}`;
    if (key.startsWith(`${prefixes.traces}:`)) return "trace indexes and anomalies";
    if (key.startsWith(`${prefixes.research}:`)) {
      // Past the partition's hash tag ({r<k>}).
      const rest = key.slice(prefixes.research.length + 1).replace(/^\{[^}]*\}:/, "");
      if (rest.endsWith(":events")) return "research events";
      return /^[0-9a-f]{32}$/.test(rest) ? "research record" : "research indexes";
    }
    if (key.startsWith(`${prefixes.queue}:`)) {
      // <prefix>:{<queue>}:<queue>:<rest>: each queue under its own hash tag.
      const [queue = "", ...rest] = key
        .slice(prefixes.queue.length + 1)
        .replace(/^\{[^}]*\}:/, "")
        .split(":");
      const tail = rest.join(":");
      return `bullmq ${queue} ${/^[0-9a-f]{32}-/.test(tail) ? "jobs" : "lists"}`;
    }
    return "other";
  };
  return measure(
    label,
    researches,
    async (url) => {
      const stack = await startStack({
        redisUrl: url,
        useDist: true,
        replicas: ONE_OF_EACH,
        env: { ...isolated, LOG_LEVEL: "warn", LLM_SIM_LATENCY_MS: "0", COLLECTOR_BLOCK_MS: "100", ...env },
      });
      const redis = new Redis(url, { maxRetriesPerRequest: null });
      const store = new ResearchStore(redis, { prefix: prefixes.research });
      const fetch = createKeepAliveFetch();
      try {
        const ids = await submitResearches(fetch, stack.apiUrl!, researches, label);
        for (const id of ids) {
          const view = await waitFor(
            async () => {
              const v = await store.get(id);
              return v && ["completed", "failed", "cancelled"].includes(v.status) ? v : undefined;
            },
            { timeoutMs: 120_000, intervalMs: 50, what: `research ${id}` },
          );
          if (view.status !== "completed") throw new BenchRunError(`${label}: research ${id} ${view.status}: ${view.error?.message}`);
        }
        // Every span in and assembled: the collector's stream drained and quiet for a second.
        let last = "";
        let since = Date.now();
        await waitFor(
          async () => {
            const s = (await (await fetch(`${stack.collectorUrl}/stats`)).json()) as {
              tracesStored: number;
              stream: { pending: number; length: number };
            };
            const now = `${s.tracesStored}/${s.stream.length}/${s.stream.pending}`;
            if (now !== last) [last, since] = [now, Date.now()];
            return Date.now() - since >= 1_000 && s.stream.pending === 0 ? true : undefined;
          },
          { timeoutMs: 120_000, intervalMs: 100, what: "the span stream to settle" },
        );
      } finally {
        await stack.stop();
        await fetch.close();
        redis.disconnect();
      }
    },
    family,
  );
}

/**
 * Redis work and memory per research: the shipped fan-out (8 claims), the same pipeline with one claim and no
 * tools (3 calls), and a raw BullMQ chain of three jobs (the floor), each on its own redis-server.
 */
export async function benchRedisFootprint(researches: number): Promise<Footprint[]> {
  const rows: Footprint[] = [];
  rows.push(
    await measure("raw BullMQ chain (3 jobs)", researches, async (url) => {
      await benchRawChain(url, { sequential: 1, saturation: researches - 1, concurrency: 32 });
    }),
  );
  rows.push(await productFootprint("3-call pipeline (1 claim, no tools)", researches, { MAX_CLAIMS: "1", MAX_TOOL_TURNS: "0" }));
  rows.push(await productFootprint("fan-out (8 claims, default)", researches, {}));
  return rows;
}
