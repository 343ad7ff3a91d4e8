import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { freePort, reapOnExit } from "@tracelane/launcher";
import { withProbe } from "./redis-probe.js";
import { waitFor } from "./wait.js";

/** One cluster-enabled redis-server process and its private dir. */
export interface ClusterNodeProcess {
  port: number;
  /** The cluster bus port, chosen explicitly: the default (port + 10000) can pass 65535 or be taken. */
  busPort: number;
  dir: string;
  alive(): boolean;
  /** Set when redis-server could not be run at all (not on PATH). */
  spawnError(): Error | undefined;
  /** Signal the node's process group, so a fork (diskless sync, BGSAVE) goes down with it. */
  signal(signal: NodeJS.Signals): void;
  exited: Promise<void>;
}

const START_ATTEMPTS = 3;

/** A free port no other node of this cluster holds; `taken` is shared by the nodes started together. */
async function pickPort(taken: Set<number>): Promise<number> {
  for (;;) {
    const port = await freePort();
    if (taken.has(port)) continue;
    taken.add(port);
    return port;
  }
}

const logTail = (dir: string): string => {
  try {
    return readFileSync(path.join(dir, "redis.log"), "utf8").trim().split("\n").slice(-5).join("\n");
  } catch {
    return "(no log written)";
  }
};

function spawnNode(port: number, busPort: number, nodeTimeoutMs: number): ClusterNodeProcess {
  const dir = mkdtempSync(path.join(tmpdir(), "tracelane-redis-cluster-"));
  // prettier-ignore
  const args = [
    "--port", String(port), "--bind", "127.0.0.1", "--protected-mode", "no",
    "--dir", dir, "--logfile", path.join(dir, "redis.log"),
    "--save", "", "--appendonly", "no", "--maxmemory-policy", "noeviction",
    "--cluster-enabled", "yes", "--cluster-port", String(busPort),
    "--cluster-config-file", path.join(dir, "nodes.conf"),
    "--cluster-node-timeout", String(nodeTimeoutMs),
    // A replica may take over however long its link was down, and replicas stay where they were put:
    // failover is quick and the topology after it is predictable.
    "--cluster-replica-validity-factor", "0", "--cluster-allow-replica-migration", "no",
    "--cluster-allow-reads-when-down", "no", "--cluster-require-full-coverage", "yes",
    // The default 5 s delay before a diskless full sync would hold every replica's first sync.
    "--repl-diskless-sync-delay", "0",
    // No data to keep and no lagging replica worth waiting for: stop() is quick.
    "--shutdown-on-sigterm", "nosave now",
  ];
  const child = spawn("redis-server", args, { cwd: dir, stdio: "ignore", detached: true });
  reapOnExit(child);
  let done = false;
  let spawnError: Error | undefined;
  // A spawn failure emits "error" and may never emit "exit".
  const exited = new Promise<void>((resolve) => {
    child.once("exit", () => resolve());
    child.once("error", (err) => {
      spawnError = err;
      resolve();
    });
  }).then(() => {
    done = true;
  });
  return {
    port,
    busPort,
    dir,
    alive: () => !done,
    spawnError: () => spawnError,
    signal: (signal) => {
      if (done || child.pid === undefined) return;
      try {
        process.kill(-child.pid, signal);
      } catch {
        // the group is gone already
      }
    },
    exited,
  };
}

/** Start one node and wait until it answers PING; a node that dies at start (port taken) is retried on new ports. */
export async function startClusterNode(opts: {
  nodeTimeoutMs: number;
  timeoutMs: number;
  taken: Set<number>;
}): Promise<ClusterNodeProcess> {
  let lastFailure = "";
  for (let attempt = 1; attempt <= START_ATTEMPTS; attempt++) {
    const node = spawnNode(await pickPort(opts.taken), await pickPort(opts.taken), opts.nodeTimeoutMs);
    let outcome: "ready" | "exited";
    try {
      outcome = await waitFor(
        async () => (node.alive() ? (await withProbe(node.port, (r) => r.ping())) === "PONG" && ("ready" as const) : ("exited" as const)),
        { what: `cluster node redis-server on port ${node.port} to answer PING`, timeoutMs: opts.timeoutMs, intervalMs: 50 },
      );
    } catch (err) {
      const log = logTail(node.dir);
      await stopClusterNode(node);
      throw new Error(`${(err as Error).message}; its log ends:\n${log}`, { cause: err });
    }
    if (outcome === "ready") return node;
    lastFailure = logTail(node.dir);
    rmSync(node.dir, { recursive: true, force: true });
    const spawnError = node.spawnError();
    if (spawnError) throw new Error(`could not run redis-server (install Redis >= 7.0 and put it on PATH): ${spawnError.message}`);
  }
  throw new Error(
    `redis-server (cluster node) exited at start ${START_ATTEMPTS} times (Redis >= 7.0 is needed for --cluster-port); last log:\n${lastFailure}`,
  );
}

/** Resolve true when `promise` settles within ms; the timer never outlives the call. */
async function within(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
  try {
    return await Promise.race([promise.then(() => true), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** SIGTERM, SIGKILL if it has not exited after `graceMs`, then delete its dir. Safe to call twice. */
export async function stopClusterNode(node: ClusterNodeProcess, graceMs = 10_000): Promise<void> {
  node.signal("SIGTERM");
  if (!(await within(node.exited, graceMs))) {
    node.signal("SIGKILL");
    if (!(await within(node.exited, 5_000))) throw new Error(`redis cluster node on port ${node.port} did not exit after SIGKILL`);
  }
  rmSync(node.dir, { recursive: true, force: true });
}

/** SIGKILL: no shutdown, no save, the cluster learns of it only by missing pings. */
export async function killClusterNode(node: ClusterNodeProcess): Promise<void> {
  node.signal("SIGKILL");
  if (!(await within(node.exited, 5_000))) throw new Error(`redis cluster node on port ${node.port} did not exit after SIGKILL`);
}
