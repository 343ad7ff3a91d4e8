import { spawn, type ChildProcess } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";

/** The repository root, found from this file's place in packages/launcher/src. */
export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");

export interface ServiceProcess {
  name: string;
  /** Its HTTP port (api, simulator, collector) or /healthz port (workers), when it has one. */
  port?: number;
  child: ChildProcess;
  /** Everything the process printed so far (stdout + stderr). */
  output(): string;
  /** Resolves when the output matches, rejects on exit or timeout. */
  waitForOutput(pattern: RegExp, timeoutMs?: number): Promise<void>;
  /** Signal and wait for exit; returns the exit code (null when killed by a signal). */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  exited: Promise<number | null>;
}

/**
 * Run a service entrypoint (TypeScript source, via tsx) as its own OS process,
 * the way `pnpm start` and the demo do.
 */
export function spawnService(
  name: string,
  entry: string,
  env: Record<string, string | undefined>,
  opts: { args?: string[]; echo?: (line: string) => void; node?: boolean; nodeArgs?: string[] } = {},
): ServiceProcess {
  // One OS process per service: node itself, with tsx as a loader for TypeScript sources.
  // (The tsx CLI would put a second process in between, and a SIGKILL would orphan the real one.)
  const loader = opts.node ? [] : ["--import", "tsx"];
  const child = spawn(process.execPath, [...(opts.nodeArgs ?? []), ...loader, path.resolve(REPO_ROOT, entry), ...(opts.args ?? [])], {
    cwd: REPO_ROOT,
    // TRACELANE_EXIT_WITH_PARENT: a service whose launcher dies (even by SIGKILL) stops on its own.
    env: { ...process.env, NODE_ENV: "test", TRACELANE_EXIT_WITH_PARENT: "true", ...env },
    stdio: ["ignore", "pipe", "pipe"],
    // Own process group: a terminal's Ctrl-C reaches only the launcher, which stops services in order.
    detached: true,
  });
  reapOnExit(child);
  let out = "";
  let partial = "";
  const listeners = new Set<() => void>();
  const onData = (chunk: Buffer) => {
    const text = chunk.toString();
    out += text;
    if (opts.echo) {
      const lines = (partial + text).split("\n");
      partial = lines.pop() ?? "";
      for (const line of lines) opts.echo(line);
    }
    if (out.length > 2_000_000) out = out.slice(-1_000_000);
    for (const l of listeners) l();
  };
  child.stdout?.on("data", onData);
  child.stderr?.on("data", onData);
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));

  return {
    name,
    child,
    exited,
    output: () => out,
    waitForOutput(pattern, timeoutMs = 20_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          if (pattern.test(out)) {
            done();
            resolve();
          }
        };
        const timer = setTimeout(() => {
          done();
          reject(new Error(`${name}: no output matching ${pattern} within ${timeoutMs} ms. Output:\n${out.slice(-4000)}`));
        }, timeoutMs);
        const onExit = (code: number | null) => {
          done();
          reject(new Error(`${name} exited (${code}) before printing ${pattern}. Output:\n${out.slice(-4000)}`));
        };
        const done = () => {
          clearTimeout(timer);
          listeners.delete(check);
          child.off("exit", onExit);
        };
        listeners.add(check);
        child.once("exit", onExit);
        check();
      });
    },
    async stop(signal = "SIGTERM") {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      child.kill(signal);
      return exited;
    },
  };
}

const live = new Set<ChildProcess>();
let reaperInstalled = false;

/** Whatever happens to the launcher, its detached children do not outlive it. */
export function reapOnExit(child: ChildProcess): void {
  live.add(child);
  child.once("exit", () => live.delete(child));
  if (reaperInstalled) return;
  reaperInstalled = true;
  process.once("exit", () => {
    for (const c of live) {
      try {
        c.kill("SIGKILL");
      } catch {
        // already gone
      }
    }
  });
}
