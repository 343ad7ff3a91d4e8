import { readClusterNodes, readNodeReport, requireClusterReady, requireFailedOver, type FailoverBaseline } from "./cluster-checks.js";
import { killClusterNode, startClusterNode, stopClusterNode, type ClusterNodeProcess } from "./cluster-node-process.js";
import { CLUSTER_SLOTS, normalizeSlots, parseCommandStats, type ClusterNodeView, type SlotRange } from "./cluster-topology.js";
import { runRedisCli } from "./redis-cli.js";
import { withProbe } from "./redis-probe.js";
import { waitFor } from "./wait.js";

export type { SlotRange } from "./cluster-topology.js";

export interface RedisClusterOptions {
  /** At least 3: Redis Cluster needs a majority of masters to elect a replacement. Default 3. */
  masters?: number;
  /** Default 1. */
  replicasPerMaster?: number;
  /** `cluster-node-timeout`: how long a silent node takes to be flagged failing. Default 1000. */
  nodeTimeoutMs?: number;
  /** Bound of each wait (a node starting, the cluster forming, a failover). Default 30000. */
  timeoutMs?: number;
}

export interface RedisClusterNode {
  port: number;
  id: string;
  /** As of start; after a failover ask masters(). */
  role: "master" | "replica";
  /** For a replica, the port of the master it was created to follow. */
  masterPort?: number;
}

export interface RedisClusterMaster {
  port: number;
  slots: SlotRange[];
}

export interface EphemeralRedisCluster {
  /** Masters (by first slot), then replicas. */
  nodes: readonly RedisClusterNode[];
  /** "127.0.0.1:p1,127.0.0.1:p2,...", every node: the format of REDIS_CLUSTER_NODES. */
  seeds: string;
  /** Healthy masters that own slots, as a live node sees them now, sorted by first slot. */
  masters(): Promise<RedisClusterMaster[]>;
  /** Port of the master that owns `slot` now. */
  masterOfSlot(slot: number): Promise<number>;
  /** SIGKILL the node: no shutdown, no save. */
  killNode(port: number): Promise<void>;
  /** Wait until a replica of the master killed on deadPort has taken its slots; resolves the replica's port. */
  waitForFailover(deadPort: number, opts?: { timeoutMs?: number }): Promise<number>;
  /** INFO commandstats of one node: command (`get`, `cluster|info`, ...) -> calls. */
  commandStats(port: number): Promise<Record<string, number>>;
  /** DBSIZE of one node. */
  keyCount(port: number): Promise<number>;
  /** Stop every node, wait for it to exit and delete its dir. Safe to call twice. */
  stop(): Promise<void>;
}

function validated(opts: RedisClusterOptions) {
  const o = { masters: 3, replicasPerMaster: 1, nodeTimeoutMs: 1_000, timeoutMs: 30_000, ...opts };
  const need = (ok: boolean, what: string) => {
    if (!ok) throw new RangeError(`startRedisCluster: ${what}`);
  };
  need(
    Number.isInteger(o.masters) && o.masters >= 3,
    `masters must be a whole number of at least 3 (Redis Cluster's minimum), got ${o.masters}`,
  );
  need(
    Number.isInteger(o.replicasPerMaster) && o.replicasPerMaster >= 0,
    `replicasPerMaster must be a whole number >= 0, got ${o.replicasPerMaster}`,
  );
  need(
    Number.isInteger(o.nodeTimeoutMs) && o.nodeTimeoutMs >= 100,
    `nodeTimeoutMs must be a whole number of ms >= 100, got ${o.nodeTimeoutMs}`,
  );
  need(o.timeoutMs > 0, `timeoutMs must be positive, got ${o.timeoutMs}`);
  return o;
}

/** Nodes in a stable order: masters by first slot, each master's replicas after all masters. */
function describeNodes(views: readonly ClusterNodeView[]): RedisClusterNode[] {
  const portOf = new Map(views.map((v) => [v.id, v.port]));
  const firstSlot = (v: ClusterNodeView) => Math.min(...v.slots.map(([from]) => from));
  const masters = views.filter((v) => v.role === "master").sort((a, b) => firstSlot(a) - firstSlot(b));
  const replicas = masters.flatMap((m) => views.filter((v) => v.masterId === m.id).sort((a, b) => a.port - b.port));
  return [...masters, ...replicas].map((v) =>
    v.role === "master"
      ? { port: v.port, id: v.id, role: "master" }
      : { port: v.port, id: v.id, role: "replica", masterPort: portOf.get(v.masterId!)! },
  );
}

/**
 * Start a private Redis Cluster on loopback: `masters` x (1 + `replicasPerMaster`) cluster-enabled
 * redis-servers on free ports joined with `redis-cli --cluster create`. Resolves once every node reports
 * cluster_state:ok, agrees on who owns all 16384 slots and every replica is synced to its master.
 */
export async function startRedisCluster(opts: RedisClusterOptions = {}): Promise<EphemeralRedisCluster> {
  const o = validated(opts);
  const expected = { masters: o.masters, replicasPerMaster: o.replicasPerMaster };
  const total = o.masters * (1 + o.replicasPerMaster);
  const procs: ClusterNodeProcess[] = [];
  const baselines = new Map<number, FailoverBaseline>();
  let stopping: Promise<void> | undefined;
  const stop = () => (stopping ??= Promise.all(procs.map((p) => stopClusterNode(p))).then(() => undefined));

  const procOf = (port: number): ClusterNodeProcess => {
    const proc = procs.find((p) => p.port === port);
    if (!proc) throw new Error(`no node of this cluster on port ${port}; its nodes are on ${procs.map((p) => p.port).join(", ")}`);
    return proc;
  };
  const alive = () => procs.filter((p) => p.alive());
  /** The view of the first live node that answers. */
  const liveViews = async (): Promise<ClusterNodeView[]> => {
    const errors: string[] = [];
    for (const proc of alive()) {
      try {
        return await readClusterNodes(proc.port);
      } catch (err) {
        errors.push((err as Error).message);
      }
    }
    throw new Error(`no live node of the cluster answered CLUSTER NODES: ${errors.join("; ") || "every node is stopped"}`);
  };

  try {
    // Cheap, and the clearest error when redis-cli is missing, before any server starts.
    await runRedisCli(["--version"], 10_000);
    const taken = new Set<number>();
    const started = await Promise.allSettled(
      Array.from({ length: total }, () => startClusterNode({ nodeTimeoutMs: o.nodeTimeoutMs, timeoutMs: o.timeoutMs, taken })),
    );
    for (const s of started) if (s.status === "fulfilled") procs.push(s.value);
    const failed = started.find((s) => s.status === "rejected");
    if (failed) throw failed.reason;

    const addresses = procs.map((p) => `127.0.0.1:${p.port}`);
    await runRedisCli(
      ["--cluster", "create", ...addresses, "--cluster-replicas", String(o.replicasPerMaster), "--cluster-yes"],
      o.timeoutMs,
    );
    const views = await waitFor(async () => requireClusterReady(await Promise.all(procs.map((p) => readNodeReport(p.port))), expected), {
      what: `the ${total}-node Redis Cluster on ports ${procs.map((p) => p.port).join(", ")} to be ready`,
      timeoutMs: o.timeoutMs,
      intervalMs: 100,
    });
    const nodes = describeNodes(views);

    const masters = async (): Promise<RedisClusterMaster[]> =>
      (await liveViews())
        .filter((v) => v.role === "master" && !v.flags.includes("fail") && v.slots.length > 0)
        .map((v) => ({ port: v.port, slots: normalizeSlots(v.slots) }))
        .sort((a, b) => a.slots[0]![0] - b.slots[0]![0]);

    return {
      nodes,
      seeds: nodes.map((n) => `127.0.0.1:${n.port}`).join(","),
      masters,
      masterOfSlot: async (slot) => {
        if (!Number.isInteger(slot) || slot < 0 || slot >= CLUSTER_SLOTS)
          throw new RangeError(`slot must be a whole number 0..${CLUSTER_SLOTS - 1}, got ${slot}`);
        const owner = (await masters()).find((m) => m.slots.some(([from, to]) => slot >= from && slot <= to));
        if (!owner) throw new Error(`no healthy master owns slot ${slot} (the cluster is down or mid-failover)`);
        return owner.port;
      },
      killNode: async (port) => {
        const proc = procOf(port);
        if (!proc.alive()) throw new Error(`node on port ${port} is not running (killed or stopped already)`);
        // Read before the kill what waitForFailover must see taken over: this node's slots and its replicas.
        const views = await readClusterNodes(port);
        const myself = views.find((v) => v.flags.includes("myself"))!;
        baselines.set(port, {
          port,
          id: myself.id,
          slots: myself.role === "master" ? normalizeSlots(myself.slots) : [],
          replicaIds: views.filter((v) => v.masterId === myself.id).map((v) => v.id),
        });
        await killClusterNode(proc);
      },
      waitForFailover: async (deadPort, waitOpts = {}) => {
        const dead = baselines.get(deadPort);
        if (!dead) throw new Error(`waitForFailover(${deadPort}): kill that node with killNode(${deadPort}) first`);
        if (dead.slots.length === 0)
          throw new Error(`waitForFailover(${deadPort}): that node owned no slots when killed (a replica?); nothing fails over`);
        if (dead.replicaIds.length === 0) throw new Error(`waitForFailover(${deadPort}): that master had no replica to promote`);
        return waitFor(async () => requireFailedOver(await Promise.all(alive().map((p) => readNodeReport(p.port))), dead), {
          what: `a replica of the master killed on port ${deadPort} to take over its slots`,
          timeoutMs: waitOpts.timeoutMs ?? o.timeoutMs,
          intervalMs: 100,
        });
      },
      commandStats: async (port) => parseCommandStats(await withProbe(procOf(port).port, (r) => r.info("commandstats"))),
      keyCount: async (port) => withProbe(procOf(port).port, (r) => r.dbsize()),
      stop,
    };
  } catch (err) {
    await stop().catch(() => undefined); // the startup error is the one worth reporting
    throw err;
  }
}
