import { readFileSync } from "node:fs";
import type { Redis } from "ioredis";

/** CPU milliseconds each process spent between two snapshots. */
export type CpuSplit = Record<string, number>;

/**
 * Where the CPU goes while the pipeline runs: every node process by pid
 * (user + system time from /proc, so Linux only) and redis-server (INFO cpu).
 * On a machine whose cores are all busy, throughput is cores / total.
 */
export function cpuSampler(pids: Record<string, number>, redis: Redis) {
  const ticksPerMs = 100 / 1000; // USER_HZ is 100 on Linux
  const nodeCpuMs = (pid: number): number => {
    // Fields after "(comm) ": state is 0, utime 11, stime 12 (clock ticks).
    const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
    return (Number(fields[11]) + Number(fields[12])) / ticksPerMs;
  };
  const redisCpuMs = async (): Promise<number> => {
    const info = await redis.info("cpu");
    const value = (name: string) => Number(new RegExp(`^${name}:([\\d.]+)`, "m").exec(info)?.[1] ?? NaN);
    return (value("used_cpu_sys") + value("used_cpu_user")) * 1000;
  };
  const snapshot = async (): Promise<CpuSplit> => {
    const out: CpuSplit = {};
    for (const [name, pid] of Object.entries(pids)) out[name] = nodeCpuMs(pid);
    out["redis-server"] = await redisCpuMs();
    return out;
  };
  return {
    /** Linux only: elsewhere the split is skipped. */
    available: (() => {
      try {
        nodeCpuMs(process.pid);
        return true;
      } catch {
        return false;
      }
    })(),
    snapshot,
    /** CPU ms each process spent since `before`, divided by the `units` of work done meanwhile. */
    async since(before: CpuSplit, units = 1): Promise<CpuSplit> {
      const now = await snapshot();
      return Object.fromEntries(Object.entries(now).map(([k, v]) => [k, (v - (before[k] ?? 0)) / units]));
    },
  };
}
