import type { EnvSource } from "./env.js";

/**
 * Calls `onGone` once when this process's parent exits. pnpm does not pass SIGTERM on to the script
 * it runs: it kills the `sh -c` between them, and the script lives on, re-parented (to init or a
 * subreaper). `process.ppid` is read fresh on each access, so a change means the parent is gone.
 */
export function watchParent(onGone: () => void, intervalMs = 250): () => void {
  const parent = process.ppid;
  const timer = setInterval(() => {
    if (process.ppid === parent) return;
    clearInterval(timer);
    onGone();
  }, intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}

/**
 * TRACELANE_EXIT_WITH_PARENT=true|false decides; unset, a process run by a package-manager script
 * (`pnpm start`, `pnpm --filter X start`: npm_lifecycle_event is set, also in what they spawn)
 * follows its parent, and one started otherwise (docker, systemd, nohup) does not.
 */
export function exitsWithParent(explicit: boolean | undefined, source: EnvSource = process.env): boolean {
  return explicit ?? (source.npm_lifecycle_event !== undefined && process.ppid > 1);
}
