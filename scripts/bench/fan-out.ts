import { Redis } from "ioredis";
import { isolatedRun, ONE_OF_EACH, startStack } from "@tracelane/launcher";
import { ResearchStore, type ResearchView } from "@tracelane/research-store";
import { createKeepAliveFetch } from "@tracelane/runtime";
import { modelCallsOfResearch } from "@tracelane/testkit";
import { mapLimit, percentile } from "./stats.js";
import { BenchRunError } from "./watch.js";

export interface FanOutResult {
  label: string;
  claims: number;
  callsPerResearch: number;
  /** At saturation, simulator latency 0. */
  researchesPerSec: number;
  callsPerSec: number;
  /** One in flight with the simulator's latency set: the research, its critical path and what the rest costs. */
  oneInFlight: { p50Ms: number; criticalPathP50Ms: number; overheadP50Ms: number; overheadShareP50: number };
}

/**
 * One research at a time with every model call taking `latencyMs`, then `saturation` at once with none, on
 * the real services (production bundles). The critical path of a research is what it cannot run faster than:
 * analysis + its slowest claim + synthesis, from its own record; the rest (queue hops, the fan-out and
 * fan-in, the api) is overhead.
 */
export async function benchFanOut(
  redisUrl: string,
  opts: {
    label: string;
    maxClaims: number;
    maxToolTurns: number;
    sequential: number;
    saturation: number;
    concurrency: number;
    latencyMs: number;
    stallMs: number;
  },
): Promise<FanOutResult> {
  const oneAtATime = await run(redisUrl, opts, opts.latencyMs, async ({ submit, untilFinal }) => {
    for (let i = 0; i < 5; i++) await untilFinal(await submit(`warm-up ${i}`)); // connections, JIT
    const samples: Array<{ elapsed: number; critical: number }> = [];
    for (let i = 0; i < opts.sequential; i++) {
      const t = performance.now();
      const view = await untilFinal(await submit(`one in flight ${i}`));
      const elapsed = performance.now() - t;
      const claims = Object.values(view.stages).flatMap((s) => s.claims ?? []);
      const slowestClaim = Math.max(0, ...claims.map((c) => c.latencyMs ?? 0));
      const single = Object.values(view.stages).filter((s) => !s.claims);
      samples.push({ elapsed, critical: single.reduce((n, s) => n + (s.latencyMs ?? 0), 0) + slowestClaim });
    }
    return samples;
  });
  const saturated = await run(redisUrl, opts, 0, async ({ submit, untilFinal }) => {
    for (let i = 0; i < 5; i++) await untilFinal(await submit(`warm-up ${i}`));
    const t0 = Date.now();
    const ids = await mapLimit(
      Array.from({ length: opts.saturation }, (_, i) => i),
      64,
      (i) => submit(`saturation ${i}`),
    );
    // Looked at rarely, so the looking costs the stack nothing; the end is the last record's own finish time.
    const views = await mapLimit(ids, 8, (id) => untilFinal(id, 100));
    const end = Math.max(...views.map((v) => Date.parse(v.finishedAt!)));
    return { seconds: (end - t0) / 1000, views };
  });
  const calls = saturated.views.reduce((n, v) => n + modelCallsOfResearch(v), 0);
  const overheads = oneAtATime.map((s) => s.elapsed - s.critical);
  return {
    label: opts.label,
    claims: saturated.views[0]?.stages.factcheck.claims?.length ?? 0,
    callsPerResearch: calls / saturated.views.length,
    researchesPerSec: saturated.views.length / saturated.seconds,
    callsPerSec: calls / saturated.seconds,
    oneInFlight: {
      p50Ms: percentile(
        oneAtATime.map((s) => s.elapsed),
        50,
      ),
      criticalPathP50Ms: percentile(
        oneAtATime.map((s) => s.critical),
        50,
      ),
      overheadP50Ms: percentile(overheads, 50),
      overheadShareP50: percentile(
        oneAtATime.map((s) => (s.elapsed - s.critical) / s.critical),
        50,
      ),
    },
  };
}

interface Driver {
  submit(query: string): Promise<string>;
  /** Polls the record every `pollMs` (default 2). */
  untilFinal(id: string, pollMs?: number): Promise<ResearchView>;
}

/** A stack with the fan-out's settings and every model call taking `latencyMs`; `fn` drives it. */
async function run<T>(
  redisUrl: string,
  opts: { label: string; maxClaims: number; maxToolTurns: number; concurrency: number; stallMs: number },
  latencyMs: number,
  fn: (driver: Driver) => Promise<T>,
): Promise<T> {
  const { prefixes, env: isolated } = isolatedRun("bench-fan-out");
  const stack = await startStack({
    redisUrl,
    useDist: true,
    replicas: ONE_OF_EACH,
    env: {
      ...isolated,
      WORKER_CONCURRENCY: String(opts.concurrency),
      MAX_CLAIMS: String(opts.maxClaims),
      MAX_TOOL_TURNS: String(opts.maxToolTurns),
      LLM_SIM_LATENCY_MS: String(latencyMs),
      LLM_SIM_JITTER_MS: "0",
      LOG_LEVEL: "warn",
    },
  });
  const redis = new Redis(redisUrl, { maxRetriesPerRequest: null });
  const store = new ResearchStore(redis, { prefix: prefixes.research });
  const fetch = createKeepAliveFetch();
  const driver: Driver = {
    async submit(query) {
      const res = await fetch(`${stack.apiUrl}/v1/research`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ query }),
      });
      if (res.status !== 202) throw new BenchRunError(`${opts.label}: submit -> ${res.status} ${await res.text()}`);
      return ((await res.json()) as { id: string }).id;
    },
    async untilFinal(id, pollMs = 2) {
      const since = Date.now();
      for (;;) {
        const view = await store.get(id);
        if (view?.status === "completed") return view;
        if (view && (view.status === "failed" || view.status === "cancelled")) {
          throw new BenchRunError(`${opts.label}: research ${id} ${view.status}: ${view.error?.type}: ${view.error?.message}`);
        }
        if (Date.now() - since > opts.stallMs)
          throw new BenchRunError(`${opts.label}: research ${id} did not finish in ${opts.stallMs} ms`);
        await new Promise((r) => setTimeout(r, pollMs));
      }
    },
  };
  try {
    return await fn(driver);
  } finally {
    await stack.stop();
    await fetch.close();
    const keys = await redis.keys(`${prefixes.queue}*`);
    for (let i = 0; i < keys.length; i += 500) await redis.del(...keys.slice(i, i + 500));
    redis.disconnect();
  }
}
