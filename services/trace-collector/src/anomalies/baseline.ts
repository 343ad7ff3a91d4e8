import type { ChainableCommander } from "ioredis";
import { percentile, type TraceKeys } from "@tracelane/trace-store";

/** Baseline lists outlive traces: a week without calls of a model forgets it. */
const BASELINE_TTL_SECONDS = 7 * 24 * 3600;

export interface Baseline {
  p95: number | null;
  samples: number;
}

/**
 * Rolling latency baseline per model, kept in Redis so every collector replica shares it:
 * a capped list of the most recent successful call latencies ({p}:baseline:{model}).
 */
export class BaselineStore {
  constructor(
    private readonly keys: TraceKeys,
    private readonly window: number,
  ) {}

  /** Queue the reads on a batch; `parse` turns the replies (same order) into baselines. */
  queueLoad(commands: ChainableCommander, models: readonly string[]): void {
    for (const m of models) commands.lrange(this.keys.baseline(m), 0, this.window - 1);
  }

  parse(models: readonly string[], replies: readonly unknown[]): Map<string, Baseline> {
    const out = new Map<string, Baseline>();
    models.forEach((m, i) => {
      const values = ((replies[i] as string[] | undefined) ?? []).map(Number).filter(Number.isFinite);
      out.set(m, { p95: percentile(values, 95), samples: values.length });
    });
    return out;
  }

  /** Queue on a batch: each command names one key, so a Cluster needs no partition here. */
  queueRecord(commands: ChainableCommander, latencies: ReadonlyMap<string, number[]>): void {
    for (const [model, values] of latencies) {
      if (values.length === 0) continue;
      const key = this.keys.baseline(model);
      commands.lpush(key, ...values.map((v) => Math.round(v * 1000) / 1000));
      commands.ltrim(key, 0, this.window - 1);
      commands.expire(key, BASELINE_TTL_SECONDS);
    }
  }
}
