import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { Redis } from "ioredis";
import { freePort, reapOnExit } from "@tracelane/launcher";
import { waitFor } from "./wait.js";

export interface EphemeralRedis {
  url: string;
  port: number;
  dir: string;
  /** SIGTERM (saves AOF when on) and wait for exit. */
  stop(): Promise<void>;
  /** Start again on the same port and data dir. */
  start(): Promise<void>;
  /** Stop and delete the data dir. */
  destroy(): Promise<void>;
}

/** Start a private redis-server on a free port; `appendonly` for restart tests. */
export async function startRedisServer(opts: { appendonly?: boolean; port?: number } = {}): Promise<EphemeralRedis> {
  const port = opts.port ?? (await freePort());
  const dir = mkdtempSync(path.join(tmpdir(), "tracelane-redis-"));
  let child: ChildProcess | undefined;

  const start = async () => {
    child = spawn(
      "redis-server",
      [
        "--port",
        String(port),
        "--bind",
        "127.0.0.1",
        "--dir",
        dir,
        "--save",
        "",
        "--appendonly",
        opts.appendonly ? "yes" : "no",
        "--appendfsync",
        "everysec",
        "--maxmemory-policy",
        "noeviction",
        "--protected-mode",
        "no",
      ],
      { stdio: "ignore", detached: true },
    );
    reapOnExit(child);
    child.on("error", (err) => {
      throw new Error(`could not start redis-server (is it on PATH?): ${err.message}`);
    });
    const probe = new Redis(port, "127.0.0.1", { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    probe.on("error", () => {});
    try {
      await waitFor(
        async () => {
          if (probe.status !== "ready") await probe.connect().catch(() => undefined);
          return (await probe.ping()) === "PONG";
        },
        { what: `redis-server on port ${port}`, timeoutMs: 10_000 },
      );
    } finally {
      probe.disconnect();
    }
  };

  const stop = async () => {
    const c = child;
    if (!c || c.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      c.once("exit", () => resolve());
      c.kill("SIGTERM");
    });
    child = undefined;
  };

  await start();
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    dir,
    stop,
    start,
    destroy: async () => {
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
