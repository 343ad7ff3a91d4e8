import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isolatedRun, ONE_OF_EACH } from "@tracelane/launcher";
import type { ResearchView } from "@tracelane/research-store";
import {
  modelCallsOfResearch,
  spansOfResearch,
  startRedisCluster,
  startStack,
  type EphemeralRedisCluster,
  type Stack,
} from "@tracelane/testkit";
import { apiClient } from "../support/api-client.js";
import { waitForCollectedTrace } from "../support/collected-traces.js";
import { simulatorStats } from "../support/simulator.js";

/**
 * The whole product on a real Redis Cluster (3 masters + 3 replicas on loopback): every service connects with
 * REDIS_CLUSTER_NODES, so every script, queue and index runs where a cluster puts it. Researches complete, their
 * traces assemble and answer queries, the keys and the commands spread over the masters, and a master killed
 * mid-batch is replaced by its replica without a research lost or doubled.
 */

const RESEARCHES = Number(process.env.CLUSTER_RESEARCHES ?? 300);
const FAILOVER_RESEARCHES = 200;

let cluster: EphemeralRedisCluster;
let stack: Stack;
let api: ReturnType<typeof apiClient>;

beforeAll(async () => {
  cluster = await startRedisCluster();
  const { env: isolated } = isolatedRun("cluster");
  stack = await startStack({
    // Only lends credentials on a cluster; pointing at a closed port proves nothing reaches it.
    redisUrl: "redis://127.0.0.1:1",
    replicas: ONE_OF_EACH,
    env: {
      ...isolated,
      REDIS_CLUSTER_NODES: cluster.seeds,
      // As many shards of each stage's queue as masters: a queue is one slot, and the fan-out's is a third of the work.
      TRACELANE_QUEUE_SHARDS: "3",
      LLM_SIM_LATENCY_MS: "0",
      JOB_BACKOFF_MS: "100",
      LOG_LEVEL: "warn",
    },
    ...(process.env.E2E_ECHO ? { echo: (svc: string, line: string) => console.log(`[${svc}] ${line}`) } : {}),
  });
  api = apiClient(stack.apiUrl!);
}, 120_000);

afterAll(async () => {
  await stack?.stop();
  await cluster?.stop();
});

/** Submit `n` researches (a few at a time, as clients would) and wait for every one to finish. */
async function runResearches(n: number, label: string, during?: (finished: number) => Promise<void>): Promise<ResearchView[]> {
  const ids: string[] = [];
  for (let i = 0; i < n; i += 25) {
    const batch = await Promise.all(
      Array.from({ length: Math.min(25, n - i) }, (_, j) => api.submit({ query: `${label} question ${i + j}: how do tides work?` })),
    );
    for (const r of batch) {
      expect(r.status, JSON.stringify(r.body)).toBe(202);
      ids.push(r.body.id);
    }
  }
  const views: ResearchView[] = [];
  let next = 0;
  // A research's own latency is about the whole batch's (every stage queue is FIFO across researches), so the
  // deadline is on progress: the batch fails if no research finishes for 120 s, however long the batch takes.
  let lastProgress = Date.now();
  let done = false;
  const worker = async () => {
    while (next < ids.length && !done) {
      const id = ids[next++]!;
      views.push(await api.waitForFinal(id, 600_000));
      lastProgress = Date.now();
      if (during) await during(views.length);
    }
  };
  const stalled = (async () => {
    while (!done) {
      await new Promise((r) => setTimeout(r, 1_000));
      if (!done && Date.now() - lastProgress > 120_000) {
        throw new Error(`${label}: no research finished for 120 s (${views.length} of ${ids.length} done)`);
      }
    }
  })();
  try {
    await Promise.race([Promise.all(Array.from({ length: 8 }, worker)), stalled]);
  } finally {
    done = true;
  }
  return views;
}

/** The product's calls per command on each master (INFO commandstats without the cluster's own and the probes'). */
async function commandsPerMaster(): Promise<Map<number, Record<string, number>>> {
  const out = new Map<number, Record<string, number>>();
  for (const m of await cluster.masters()) {
    const stats = await cluster.commandStats(m.port);
    out.set(m.port, Object.fromEntries(Object.entries(stats).filter(([cmd]) => !/^(cluster|info|ping|dbsize|command)/.test(cmd))));
  }
  return out;
}

const sum = (stats: Record<string, number>) => Object.values(stats).reduce((a, b) => a + b, 0);

/** Each master's busiest commands since `before`, for a failure message. */
const busiest = (before: Map<number, Record<string, number>>, after: Map<number, Record<string, number>>) =>
  [...after]
    .map(([port, stats]) => {
      const delta = Object.entries(stats).map(([cmd, n]) => [cmd, n - (before.get(port)?.[cmd] ?? 0)] as const);
      return `:${port} ${delta
        .sort((a, b) => b[1] - a[1])
        .slice(0, 6)
        .map(([cmd, n]) => `${cmd}=${n}`)
        .join(" ")}`;
    })
    .join("; ");

const shares = (counts: Map<number, number>) => {
  const total = [...counts.values()].reduce((a, b) => a + b, 0);
  return [...counts.values()].map((c) => c / total);
};

describe("the pipeline on a real Redis Cluster (3 masters + 3 replicas)", () => {
  it(`completes ${RESEARCHES} researches with every trace assembled, keys and commands spread 20-45% per master`, async () => {
    const before = await commandsPerMaster();
    const callsBefore = (await simulatorStats(stack.simulatorUrl!)).requests;
    const views = await runResearches(RESEARCHES, "spread");
    expect(views.filter((v) => v.status !== "completed").map((v) => `${v.id}: ${v.status} ${JSON.stringify(v.error)}`)).toEqual([]);
    // Every paid call is one a research recorded: none made twice, none lost.
    expect((await simulatorStats(stack.simulatorUrl!)).requests - callsBefore).toBe(views.reduce((n, v) => n + modelCallsOfResearch(v), 0));
    for (const v of views) await waitForCollectedTrace(stack.apiUrl!, v.traceId!, spansOfResearch(v), 60_000);

    const after = await commandsPerMaster();
    const commands = new Map([...after].map(([port, stats]) => [port, sum(stats) - sum(before.get(port) ?? {})]));
    const keys = new Map<number, number>();
    for (const m of await cluster.masters()) keys.set(m.port, await cluster.keyCount(m.port));
    for (const [what, counts] of [
      ["keys", keys],
      ["commands", commands],
    ] as const) {
      for (const share of shares(counts)) {
        const why = `${what} per master: ${JSON.stringify(Object.fromEntries(counts))}; busiest: ${busiest(before, after)}`;
        expect(share, why).toBeGreaterThanOrEqual(0.2);
        expect(share, why).toBeLessThanOrEqual(0.45);
      }
    }
  }, 600_000);

  it("answers list and trace queries across every partition: pages without repeats, costs in order", async () => {
    const seen = new Set<string>();
    let cursor: string | undefined;
    for (let page = 0; page < 20; page++) {
      const res = await fetch(`${stack.apiUrl}/v1/research?limit=100${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`);
      const body = (await res.json()) as { researches: { id: string; createdAt: string }[]; nextCursor: string | null };
      expect(res.status).toBe(200);
      const created = body.researches.map((r) => Date.parse(r.createdAt));
      expect(created).toEqual([...created].sort((a, b) => b - a));
      for (const r of body.researches) {
        expect(seen.has(r.id), `research ${r.id} on two pages`).toBe(false);
        seen.add(r.id);
      }
      cursor = body.nextCursor ?? undefined;
      if (!cursor) break;
    }
    expect(seen.size).toBe(RESEARCHES);

    const res = await fetch(`${stack.apiUrl}/v1/traces?sort=cost&limit=50`);
    const { traces } = (await res.json()) as { traces: { traceId: string; totalCostUsd: number | null }[] };
    expect(res.status).toBe(200);
    expect(traces).toHaveLength(50);
    const costs = traces.map((t) => t.totalCostUsd ?? 0);
    expect(costs).toEqual([...costs].sort((a, b) => b - a));
  }, 120_000);

  it(`keeps every research of a batch of ${FAILOVER_RESEARCHES} through a master SIGKILLed mid-batch: its replica takes over, none lost or doubled`, async () => {
    const callsBefore = (await simulatorStats(stack.simulatorUrl!)).requests;
    const [victim] = await cluster.masters();
    let killed: Promise<number> | undefined;
    const views = await runResearches(FAILOVER_RESEARCHES, "failover", async (finished) => {
      if (finished === 40 && !killed) {
        await cluster.killNode(victim!.port);
        killed = cluster.waitForFailover(victim!.port);
      }
    });
    expect(killed, "the master was killed mid-batch").toBeDefined();
    const promoted = await killed!;
    expect((await cluster.masters()).map((m) => m.port)).toContain(promoted);
    expect(views.filter((v) => v.status !== "completed").map((v) => `${v.id}: ${v.status} ${JSON.stringify(v.error)}`)).toEqual([]);
    expect(new Set(views.map((v) => v.id)).size).toBe(FAILOVER_RESEARCHES);
    expect((await simulatorStats(stack.simulatorUrl!)).requests - callsBefore).toBe(views.reduce((n, v) => n + modelCallsOfResearch(v), 0));
    for (const v of views) await waitForCollectedTrace(stack.apiUrl!, v.traceId!, spansOfResearch(v), 60_000);
  }, 600_000);
});
