import { z } from "zod";
import { DirectiveCounters, FAULT_KINDS, FaultKindSchema, type FaultKind, type FaultSource } from "./faults.js";
import { LatencyProfileSchema, type LatencyConfig } from "./latency.js";
import { randomSource, type Random } from "./random.js";

export interface SimulatorConfig {
  /** The accepted bearer key; undefined accepts any non-empty key. */
  apiKey: string | undefined;
  latency: LatencyConfig;
  /** Probability (0..1) that a request fails with a random kind from `faultKinds`. */
  faultRate: number;
  faultKinds: FaultKind[];
  /** Retry-After of injected 429s, in seconds (fractions go to `retry-after-ms`). */
  retryAfterS: number;
  /** Context window overrides per model id; "*" applies to every model. */
  contextLimits: Record<string, number>;
  /** Range of generated completion lengths, in tokens. */
  completionTokens: { min: number; max: number };
  /** Seeds fault rolls and latency jitter; unset uses Math.random. Generated text is always deterministic. */
  seed: number | undefined;
  /**
   * Honour `[[sim:fault=…]]` directives in message text. Off by default: message text comes from
   * whoever can POST a research query, and must not be able to make the provider fail on demand.
   */
  directives: boolean;
}

export const DEFAULT_SIMULATOR_CONFIG: SimulatorConfig = {
  apiKey: "sk-simulator",
  latency: { baseMs: 0, jitterMs: 0, models: {} },
  faultRate: 0,
  faultKinds: ["429", "500", "503"],
  retryAfterS: 1,
  contextLimits: {},
  completionTokens: { min: 120, max: 400 },
  seed: undefined,
  directives: false,
};

/** Body of `POST /_sim/config`: every field optional; `latency.models` and `contextLimits` replace the old maps. */
export const ConfigPatchSchema = z.strictObject({
  faultRate: z.number().min(0).max(1).optional(),
  faultKinds: z.array(FaultKindSchema).optional(),
  retryAfterS: z.number().min(0).optional(),
  latency: z
    .strictObject({
      baseMs: z.number().min(0).optional(),
      jitterMs: z.number().min(0).optional(),
      models: z.record(z.string(), LatencyProfileSchema).optional(),
    })
    .optional(),
  contextLimits: z.record(z.string(), z.number().int().positive()).optional(),
});
export type ConfigPatch = z.infer<typeof ConfigPatchSchema>;

interface ModelStats {
  requests: number;
  succeeded: number;
  faults: number;
  promptTokens: number;
  completionTokens: number;
}

export interface SimulatorStats {
  since: string;
  /** Every POST /v1/chat/completions, whatever became of it. */
  requests: number;
  succeeded: number;
  streamed: number;
  /** Injected faults by kind. */
  faults: Record<FaultKind, number>;
  faultsBySource: Record<FaultSource, number>;
  /** Requests refused for real: bad key, invalid body, prompt over the context window. */
  rejected: { unauthorized: number; invalidRequest: number; contextLength: number };
  /** Chat requests open right now, hung ones included. */
  inFlight: number;
  /** Hung requests still holding their connection. */
  hanging: number;
  models: Record<string, ModelStats>;
}

function emptyStats(): Omit<SimulatorStats, "inFlight" | "hanging"> {
  return {
    since: new Date().toISOString(),
    requests: 0,
    succeeded: 0,
    streamed: 0,
    faults: Object.fromEntries(FAULT_KINDS.map((k) => [k, 0])) as Record<FaultKind, number>,
    faultsBySource: { header: 0, directive: 0, rate: 0 },
    rejected: { unauthorized: 0, invalidRequest: 0, contextLength: 0 },
    models: {},
  };
}

/** Live configuration, counters and `times` state of one simulator instance. */
export class SimulatorState {
  readonly config: SimulatorConfig;
  readonly directiveCounters = new DirectiveCounters();
  private stats = emptyStats();
  private readonly gauges = { inFlight: 0, hanging: 0 };
  private rng: Random;

  constructor(config: SimulatorConfig) {
    this.config = structuredClone(config);
    this.rng = randomSource(config.seed);
  }

  random(): number {
    return this.rng();
  }

  /** Prompt prefixes seen per model (prompt caching); bounded, the oldest forgotten first. */
  private readonly cachedPrefixes = new Set<string>();

  /**
   * Whether `model` has seen this prompt prefix before (its tokens are then served from cache), and remember
   * it. A provider caches for minutes to hours; the simulator for its process's life, up to 10,000 prefixes.
   */
  prefixSeen(model: string, prefixDigest: string): boolean {
    const key = `${model} ${prefixDigest}`;
    if (this.cachedPrefixes.has(key)) return true;
    this.cachedPrefixes.add(key);
    if (this.cachedPrefixes.size > 10_000) this.cachedPrefixes.delete(this.cachedPrefixes.values().next().value!);
    return false;
  }

  applyPatch(patch: ConfigPatch): void {
    const c = this.config;
    if (patch.faultRate !== undefined) c.faultRate = patch.faultRate;
    if (patch.faultKinds !== undefined) c.faultKinds = [...patch.faultKinds];
    if (patch.retryAfterS !== undefined) c.retryAfterS = patch.retryAfterS;
    if (patch.contextLimits !== undefined) c.contextLimits = { ...patch.contextLimits };
    if (patch.latency?.baseMs !== undefined) c.latency.baseMs = patch.latency.baseMs;
    if (patch.latency?.jitterMs !== undefined) c.latency.jitterMs = patch.latency.jitterMs;
    if (patch.latency?.models !== undefined) c.latency.models = { ...patch.latency.models };
  }

  /** The live config as the admin API shows it: the API key is never included. */
  publicConfig(): Omit<SimulatorConfig, "apiKey"> & { apiKeyRequired: boolean } {
    const { apiKey, ...rest } = this.config;
    return { ...structuredClone(rest), apiKeyRequired: apiKey !== undefined };
  }

  /** Zero the counters, forget `times` state and restart the seeded sequence. */
  reset(): void {
    this.stats = emptyStats();
    this.directiveCounters.reset();
    this.cachedPrefixes.clear();
    this.rng = randomSource(this.config.seed);
  }

  snapshot(): SimulatorStats {
    return { ...structuredClone(this.stats), ...this.gauges };
  }

  private model(model: string): ModelStats {
    return (this.stats.models[model] ??= { requests: 0, succeeded: 0, faults: 0, promptTokens: 0, completionTokens: 0 });
  }

  recordRequest(): void {
    this.stats.requests++;
  }

  recordModelRequest(model: string): void {
    this.model(model).requests++;
  }

  recordFault(model: string, kind: FaultKind, source: FaultSource): void {
    this.stats.faults[kind]++;
    this.stats.faultsBySource[source]++;
    this.model(model).faults++;
  }

  recordRejection(kind: keyof SimulatorStats["rejected"]): void {
    this.stats.rejected[kind]++;
  }

  recordSuccess(model: string, stream: boolean, promptTokens: number, completionTokens: number): void {
    this.stats.succeeded++;
    if (stream) this.stats.streamed++;
    const m = this.model(model);
    m.succeeded++;
    m.promptTokens += promptTokens;
    m.completionTokens += completionTokens;
  }

  /** Count an open response in the `inFlight` (or `hanging`) gauge until its connection closes. */
  track(res: { once(event: "close", listener: () => void): unknown }, gauge: "inFlight" | "hanging"): void {
    this.gauges[gauge]++;
    res.once("close", () => {
      this.gauges[gauge]--;
    });
  }
}
