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

  /** Queue the reads; `parse` turns the replies (same order) into baselines. */
  queueLoad(pipeline: ChainableCommander, models: readonly string[]): void {
    for (const m of models) pipeline.lrange(this.keys.baseline(m), 0, this.window - 1);
  }

  parse(models: readonly string[], replies: readonly unknown[]): Map<string, Baseline> {
    const out = new Map<string, Baseline>();
    models.forEach((m, i) => {
      const values = ((replies[i] as string[] | undefined) ?? []).map(Number).filter(Number.isFinite);
      out.set(m, { p95: percentile(values, 95), samples: values.length });
    });
    return out;
  }

  queueRecord(pipeline: ChainableCommander, latencies: ReadonlyMap<string, number[]>): void {
    for (const [model, values] of latencies) {
      if (values.length === 0) continue;
      const key = this.keys.baseline(model);
      pipeline.lpush(key, ...values.map((v) => Math.round(v * 1000) / 1000));
      pipeline.ltrim(key, 0, this.window - 1);
      pipeline.expire(key, BASELINE_TTL_SECONDS);
    }
  }
}
