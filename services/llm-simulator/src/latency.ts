import { setTimeout as delay } from "node:timers/promises";
import { z } from "zod";
import type { Random } from "./random.js";

export const LatencyProfileSchema = z.strictObject({
  baseMs: z.number().min(0).default(0),
  jitterMs: z.number().min(0).default(0),
});
export type LatencyProfile = z.infer<typeof LatencyProfileSchema>;

export interface LatencyConfig extends LatencyProfile {
  /** Per-model profiles; a model not listed uses the base profile. */
  models: Record<string, LatencyProfile>;
}

/** Total simulated latency for one request to `model`: base + uniform jitter in [0, jitterMs]. */
export function latencyFor(config: LatencyConfig, model: string, random: Random): number {
  const profile = config.models[model] ?? config;
  return Math.round(profile.baseMs + (profile.jitterMs > 0 ? random() * profile.jitterMs : 0));
}

/** Share of a streamed response's latency spent before the first chunk (time to first token). */
export const FIRST_CHUNK_SHARE = 0.3;

/**
 * Wait `ms`, or stop early when `signal` aborts (the client went away).
 * Resolves true when the full time passed; the timer never outlives the request.
 */
export async function sleep(ms: number, signal: AbortSignal): Promise<boolean> {
  if (signal.aborted) return false;
  if (ms <= 0) return true;
  try {
    await delay(ms, undefined, { signal });
    return true;
  } catch {
    return false;
  }
}
