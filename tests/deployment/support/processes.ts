import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { REPO_ROOT } from "@tracelane/testkit";

/** pid -> parent pid of every process now (Linux /proc). */
function parents(): Map<number, number> {
  const out = new Map<number, number>();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      // "pid (comm) state ppid ...": comm may hold spaces, so read after the last ")".
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      if (fields[0] !== "Z") out.set(Number(entry), Number(fields[1]));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** Every live descendant of `pid` (children, their children...). */
export function descendants(pid: number): number[] {
  const all = parents();
  const found: number[] = [];
  const queue = [pid];
  while (queue.length > 0) {
    const parent = queue.shift()!;
    for (const [child, ppid] of all) {
      if (ppid === parent && !found.includes(child)) {
        found.push(child);
        queue.push(child);
      }
    }
  }
  return found;
}

/** Is the process alive (and not a zombie waiting for its parent)? */
export function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2)[0] !== "Z";
  } catch {
    return false;
  }
}

/** Resolves with the pids still alive once none is, or after timeoutMs. */
export async function waitUntilGone(pids: number[], timeoutMs: number): Promise<number[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const left = pids.filter(alive);
    if (left.length === 0 || Date.now() > deadline) return left;
    await new Promise((r) => setTimeout(r, 100));
  }
}

let pnpmCli: string | undefined;

/**
 * The pnpm CLI this repository pins (package.json packageManager), as a JS file to run with node: the
 * one `pnpm test` runs under, or the one npx fetches (resolved once).
 */
export function pnpmPath(): string {
  if (pnpmCli) return pnpmCli;
  const fromEnv = process.env.npm_execpath;
  if (fromEnv && /pnpm\.c?js$/.test(fromEnv)) return (pnpmCli = fromEnv);
  const version = (JSON.parse(readFileSync(`${REPO_ROOT}/package.json`, "utf8")) as { packageManager: string }).packageManager;
  // The bin npx puts on PATH is a symlink to the CLI's JS entry.
  const out = execFileSync("npx", ["-y", "-p", version, "sh", "-c", 'readlink -f "$(command -v pnpm)"'], {
    cwd: REPO_ROOT,
    encoding: "utf8",
  });
  return (pnpmCli = out.trim());
}

export interface Spawned {
  child: ChildProcess;
  output(): string;
  /** Resolves when the output matches (rejects on exit first, or timeout). */
  waitFor(pattern: RegExp, timeoutMs: number): Promise<void>;
  exited: Promise<number | null>;
}

/** Run a command from the repo root in its own process group, collecting stdout + stderr. */
export function spawnCollecting(command: string, args: string[], env: Record<string, string | undefined>): Spawned {
  const child = spawn(command, args, { cwd: REPO_ROOT, env, stdio: ["ignore", "pipe", "pipe"], detached: true });
  let out = "";
  const listeners = new Set<() => void>();
  const onData = (chunk: Buffer) => {
    out += chunk.toString();
    for (const l of listeners) l();
  };
  child.stdout!.on("data", onData);
  child.stderr!.on("data", onData);
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  return {
    child,
    output: () => out,
    exited,
    waitFor(pattern, timeoutMs) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(
          () => finish(new Error(`no output matching ${pattern} within ${timeoutMs} ms:\n${out.slice(-3000)}`)),
          timeoutMs,
        );
        const check = () => {
          if (pattern.test(out)) finish();
        };
        const onExit = (code: number | null) => finish(new Error(`exited (${code}) before printing ${pattern}:\n${out.slice(-3000)}`));
        const finish = (err?: Error) => {
          clearTimeout(timer);
          listeners.delete(check);
          child.off("exit", onExit);
          if (err) reject(err);
          else resolve();
        };
        listeners.add(check);
        child.once("exit", onExit);
        check();
      });
    },
  };
}

/** The environment of this test process without the given variables. */
export function envWithout(...names: string[]): Record<string, string | undefined> {
  const env: Record<string, string | undefined> = { ...process.env };
  for (const name of names) delete env[name];
  return env;
}

/** The command line of a process ("" once it is gone). */
export function commandLine(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").join(" ");
  } catch {
    return "";
  }
}

/** The environment a running process actually has (Linux: /proc/<pid>/environ). */
export function environOf(pid: number): Record<string, string> {
  const raw = readFileSync(`/proc/${pid}/environ`, "utf8");
  return Object.fromEntries(
    raw
      .split("\0")
      .filter(Boolean)
      .map((kv) => [kv.slice(0, kv.indexOf("=")), kv.slice(kv.indexOf("=") + 1)]),
  );
}
