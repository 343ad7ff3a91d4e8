import { Redis } from "ioredis";
import { isolatedRun, ONE_OF_EACH, startStack } from "@tracelane/launcher";
import { createKeepAliveFetch } from "@tracelane/runtime";
import { startRedisCluster, waitFor } from "@tracelane/testkit";
import { commandStats, redisCpuMs } from "./redis-footprint.js";
import { submitResearches } from "./submit.js";
import { BenchRunError } from "./watch.js";

/** What one master of the cluster did for the researches of a run, per research. */
export interface ShardRow {
  port: number;
  slots: number;
  cpuMsPer: number;
  commandsPer: number;
  commandShare: number;
  keyShare: number;
}

export interface ClusterRun {
  researches: number;
  seconds: number;
  shards: ShardRow[];
}

/** Commands the cluster sends itself, and the bench's own probes: not the product's work. */
const isOurs = (command: string) => !/^(cluster|info|config|ping|dbsize|command|client)/.test(command);

/**
 * `researches` researches through the whole product on a real Redis Cluster (3 masters + 3 replicas on this
 * machine), every service on REDIS_CLUSTER_NODES: per master, the Redis CPU and commands per research and the
 * share of commands and keys it holds. The same work on one Redis is the `redis` part's row.
 */
export async function benchCluster(researches: number, env: Record<string, string> = {}): Promise<ClusterRun> {
  const cluster = await startRedisCluster();
  const { env: isolated } = isolatedRun("bench-cluster");
  const masters = await cluster.masters();
  const probes = masters.map((m) => new Redis(m.port, "127.0.0.1", { maxRetriesPerRequest: null }));
  const fetch = createKeepAliveFetch();
  try {
    const stack = await startStack({
      redisUrl: "redis://127.0.0.1:1",
      useDist: true,
      replicas: ONE_OF_EACH,
      env: {
        ...isolated,
        REDIS_CLUSTER_NODES: cluster.seeds,
        // A queue is one slot: one shard of each stage's queue per master (docs/scaling.md).
        TRACELANE_QUEUE_SHARDS: String(masters.length),
        LOG_LEVEL: "warn",
        LLM_SIM_LATENCY_MS: "0",
        COLLECTOR_BLOCK_MS: "100",
        ...env,
      },
    });
    try {
      await Promise.all(probes.map((p) => p.config("RESETSTAT")));
      const cpu0 = await Promise.all(probes.map(redisCpuMs));
      const started = Date.now();
      const ids = await submitResearches(fetch, stack.apiUrl!, researches, "Cluster");
      for (const id of ids) {
        const view = await waitFor(
          async () => {
            const v = (await (await fetch(`${stack.apiUrl}/v1/research/${id}`)).json()) as {
              status: string;
              traceId: string;
              error?: { message: string };
            };
            return ["completed", "failed", "cancelled"].includes(v.status) ? v : undefined;
          },
          { timeoutMs: 120_000, intervalMs: 50, what: `research ${id}` },
        );
        if (view.status !== "completed") throw new BenchRunError(`cluster: research ${id} ${view.status}: ${view.error?.message}`);
        // Its trace assembled: the collector's part of the work is in the figures too.
        await waitFor(async () => (await fetch(`${stack.apiUrl}/v1/traces/${view.traceId}`)).ok || undefined, {
          timeoutMs: 60_000,
          intervalMs: 50,
          what: `the trace of research ${id}`,
        });
      }
      const seconds = (Date.now() - started) / 1000;
      const cpu = (await Promise.all(probes.map(redisCpuMs))).map((c, i) => c - cpu0[i]!);
      const commands = await Promise.all(
        probes.map(async (p) => [...(await commandStats(p)).entries()].filter(([c]) => isOurs(c)).reduce((n, [, s]) => n + s.calls, 0)),
      );
      const keys = await Promise.all(probes.map((p) => p.dbsize()));
      const total = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
      return {
        researches,
        seconds,
        shards: masters.map((m, i) => ({
          port: m.port,
          slots: m.slots.reduce((n, [from, to]) => n + to - from + 1, 0),
          cpuMsPer: cpu[i]! / researches,
          commandsPer: commands[i]! / researches,
          commandShare: commands[i]! / total(commands),
          keyShare: keys[i]! / total(keys),
        })),
      };
    } finally {
      await stack.stop();
    }
  } finally {
    await fetch.close();
    for (const p of probes) p.disconnect();
    await cluster.stop();
  }
}
