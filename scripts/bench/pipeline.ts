import { Queue } from "bullmq";
import { Redis } from "ioredis";
import { isolatedRun, ONE_OF_EACH, startStack, WORKER_SERVICES, type Stack } from "@tracelane/launcher";
import { QUEUE_NAMES, queuePrefix, STAGES } from "@tracelane/queue-contract";
import { ResearchStore, researchKeys } from "@tracelane/research-store";
import { createKeepAliveFetch } from "@tracelane/runtime";
import { spansOfResearch } from "@tracelane/testkit";
import { traceKeys } from "@tracelane/trace-store";
import { cpuSampler, type CpuSplit } from "./cpu-split.js";
import { mapLimit, summarize, type LatencySummary } from "./stats.js";
import { BenchRunError, watchPipeline } from "./watch.js";

export interface PipelineResult {
  oneInFlight: LatencySummary;
  /** One in flight, minus the time spent inside the three model calls (HTTP to the simulator included). */
  overheadExcludingModel: LatencySummary;
  throughputPerSec: number;
  droppedSpans: number;
  exportedSpans: number;
  failed: number;
  /** CPU ms per completed pipeline at saturation, by process (Linux only). */
  cpuPerPipeline?: CpuSplit;
  /** Research finished -> its whole trace queryable from the collector, sampled at saturation (tracing on only). */
  queryableLag?: LatencySummary & { samples: number };
  /** The raw samples, for pooling rounds. */
  samples: { latencies: number[]; overheads: number[]; lags: number[] };
  /** Throughput of each round, when rounds were pooled. */
  rounds?: number[];
}

/** Pipelines each run completes before measuring (one at a time, then a burst). */
const WARM_UP_ONE_AT_A_TIME = 20;
const WARM_UP_BURST = 200;
export const PIPELINE_WARM_UP = WARM_UP_ONE_AT_A_TIME + WARM_UP_BURST;

/** Pool several runs of one configuration: latencies and lags pooled, throughput and CPU averaged. */
export function poolRounds(results: PipelineResult[]): PipelineResult {
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const latencies = results.flatMap((r) => r.samples.latencies);
  const overheads = results.flatMap((r) => r.samples.overheads);
  const lags = results.flatMap((r) => r.samples.lags);
  const splits = results.map((r) => r.cpuPerPipeline).filter((s): s is CpuSplit => s !== undefined);
  const names = [...new Set(splits.flatMap((s) => Object.keys(s)))];
  return {
    oneInFlight: summarize(latencies),
    overheadExcludingModel: summarize(overheads),
    throughputPerSec: mean(results.map((r) => r.throughputPerSec)),
    droppedSpans: results.reduce((n, r) => n + r.droppedSpans, 0),
    exportedSpans: results.reduce((n, r) => n + r.exportedSpans, 0),
    failed: results.reduce((n, r) => n + r.failed, 0),
    ...(splits.length === results.length
      ? { cpuPerPipeline: Object.fromEntries(names.map((n) => [n, mean(splits.map((s) => s[n] ?? 0))])) }
      : {}),
    ...(lags.length ? { queryableLag: { ...summarize(lags), samples: lags.length } } : {}),
    samples: { latencies, overheads, lags },
    rounds: results.map((r) => r.throughputPerSec),
  };
}

/**
 * The product path: HTTP submit to the api, three stage workers (the fact-check checking one claim) calling the
 * simulator (zero latency) through the openai client, research records, and
 * tracing on or off. Completion is observed on the research's event stream.
 */
export async function benchPipeline(
  redisUrl: string,
  opts: {
    sequential: number;
    saturation: number;
    concurrency: number;
    tracing: boolean;
    submitConcurrency: number;
    /** Fail the run when nothing completes for this long (BENCH_STALL_TIMEOUT_S). */
    stallMs: number;
    /** For messages, e.g. "pipeline (tracing off) round 2". */
    label: string;
    env?: Record<string, string>;
  },
): Promise<PipelineResult> {
  const { prefixes, env: isolated } = isolatedRun("bench");
  const stack: Stack = await startStack({
    redisUrl,
    // The production bundles (what the image runs); `pnpm bench` builds them first.
    useDist: true,
    replicas: ONE_OF_EACH,
    env: {
      ...isolated,
      OTEL_SDK_DISABLED: opts.tracing ? "false" : "true",
      WORKER_CONCURRENCY: String(opts.concurrency),
      LLM_SIM_LATENCY_MS: "0",
      LLM_SIM_JITTER_MS: "0",
      // One claim checked without tools: three model calls, like the raw chain it is held against
      // (the fan-out's own rows are benchFanOut's).
      MAX_CLAIMS: "1",
      MAX_TOOL_TURNS: "0",
      LOG_LEVEL: "warn",
      ...opts.env,
    },
  });
  const api = stack.apiUrl!;
  const redis = new Redis(redisUrl, { maxRetriesPerRequest: null });
  // The load generator shares the two cores with the stack: keep its HTTP client cheap.
  const fetch = createKeepAliveFetch();
  const submitWithTrace = async (query: string) => {
    const res = await fetch(`${api}/v1/research`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ query }),
    });
    if (res.status !== 202) throw new Error(`submit -> ${res.status} ${await res.text()}`);
    return (await res.json()) as { id: string; traceId: string | null };
  };
  const submit = async (query: string) => (await submitWithTrace(query)).id;
  const traces = traceKeys(prefixes.traces);
  /** Time from the research finishing to its full trace being in the collector's store. */
  const lagOf = async (id: string, traceId: string) => {
    await untilFinal(id);
    const finishedAt = Date.now();
    const spans = spansOfResearch((await store.get(id))!);
    for (;;) {
      const json = await redis.hget(traces.of(traceId).summary, "json");
      if (json && (JSON.parse(json) as { spanCount: number }).spanCount >= spans) return Date.now() - finishedAt;
      if (Date.now() - finishedAt > 60_000) throw new Error(`trace ${traceId} incomplete after 60 s`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  const store = new ResearchStore(redis, { prefix: prefixes.research });
  const stageQueues = STAGES.map(
    (stage) => new Queue(QUEUE_NAMES[stage], { connection: redis, prefix: queuePrefix(prefixes.queue, QUEUE_NAMES[stage]) }),
  );
  const workers = () => WORKER_SERVICES.flatMap((name) => stack.byService(name));
  const watch = await watchPipeline({
    label: opts.label,
    queues: stageQueues,
    store,
    stallMs: opts.stallMs,
    // An open circuit is the likely reason for a stall: name it.
    describe: async () =>
      Promise.all(
        workers().map(async (w) => {
          const h = (await (await fetch(`http://127.0.0.1:${w.port}/healthz`)).json()) as { status: string; openCircuits?: string[] };
          return `  ${w.name} /healthz: ${h.status}${h.openCircuits?.length ? `, open circuits: ${h.openCircuits.join(", ")}` : ""}`;
        }),
      ),
  });
  /** Until the research is final; a failed one fails the run (with its error), and so does a stall. */
  const untilFinal = async (id: string) => {
    const key = researchKeys(prefixes.research, id).events;
    let last = "0";
    const since = Date.now();
    for (;;) {
      const res = (await redis.xread("BLOCK", 1_000, "STREAMS", key, last)) as Array<[string, Array<[string, string[]]>]> | null;
      for (const [, entries] of res ?? []) {
        for (const [entryId, fields] of entries) {
          last = entryId;
          const type = fields[fields.indexOf("type") + 1];
          if (type === "research.completed") return type;
          if (type === "research.failed" || type === "research.cancelled") {
            const view = await store.get(id);
            throw new BenchRunError(
              `${opts.label}: research ${id} ${type.slice("research.".length)}: ${view?.error ? `${view.error.stage}: ${view.error.type}: ${view.error.message}` : "no error recorded"}`,
            );
          }
        }
      }
      if (Date.now() - since > opts.stallMs) throw await watch.stalled(`research ${id} did not finish`);
    }
  };

  try {
    // Warm up connections and JIT before measuring, one at a time and then a burst as at saturation.
    for (let i = 0; i < WARM_UP_ONE_AT_A_TIME; i++) await untilFinal(await submit(`warm-up ${i}`));
    const synthesis = new Queue(QUEUE_NAMES.synthesis, { connection: redis, prefix: queuePrefix(prefixes.queue, QUEUE_NAMES.synthesis) });
    const completedCount = () => synthesis.getCompletedCount();
    const warmed = (await completedCount()) + WARM_UP_BURST;
    await mapLimit(
      Array.from({ length: WARM_UP_BURST }, (_, i) => i),
      opts.submitConcurrency,
      (i) => submit(`warm-up burst ${i}`),
    );
    await watch.until(warmed, completedCount);

    const latencies: number[] = [];
    const overheads: number[] = [];
    for (let i = 0; i < opts.sequential; i++) {
      const t = performance.now();
      const id = await submit(`one in flight ${i}`);
      await untilFinal(id);
      const elapsed = performance.now() - t;
      latencies.push(elapsed);
      const view = await store.get(id);
      const modelMs = Object.values(view?.stages ?? {}).reduce((n, s) => n + (s.latencyMs ?? 0), 0);
      overheads.push(elapsed - modelMs);
    }

    const baseline = await completedCount();
    const failedBefore = await synthesis.getFailedCount();
    const pids: Record<string, number> = { "bench driver": process.pid };
    for (const p of stack.processes) if (p.child.pid) pids[p.name.replace(/#1$/, "")] = p.child.pid;
    const cpu = cpuSampler(pids, redis);
    const cpuBefore = cpu.available ? await cpu.snapshot() : undefined;
    const t0 = performance.now();
    const lags: Array<Promise<number>> = [];
    await mapLimit(
      Array.from({ length: opts.saturation }, (_, i) => i),
      opts.submitConcurrency,
      async (i) => {
        const { id, traceId } = await submitWithTrace(`saturation ${i}`);
        // Sample every 40th research for the span -> queryable lag.
        if (opts.tracing && opts.env?.TRACELANE_SPAN_STREAM_ENABLED !== "false" && traceId && i % 40 === 0) lags.push(lagOf(id, traceId));
      },
    );
    await watch.until(opts.saturation, async () => (await completedCount()) - baseline);
    const seconds = (performance.now() - t0) / 1000;
    const cpuPerPipeline = cpuBefore ? await cpu.since(cpuBefore, opts.saturation) : undefined;
    const failed = (await synthesis.getFailedCount()) - failedBefore;
    await watch.check();
    await synthesis.close();

    // Let the batch processors drain, then read their counters from each worker.
    await new Promise((r) => setTimeout(r, 1_000));
    let droppedSpans = 0;
    let exportedSpans = 0;
    for (const w of workers()) {
      const h = (await (await fetch(`http://127.0.0.1:${w.port}/healthz`)).json()) as {
        tracing?: { droppedSpans: number; exportedSpans: number };
      };
      droppedSpans += h.tracing?.droppedSpans ?? 0;
      exportedSpans += h.tracing?.exportedSpans ?? 0;
    }
    const lagValues = await Promise.all(lags);
    return {
      oneInFlight: summarize(latencies),
      overheadExcludingModel: summarize(overheads),
      throughputPerSec: opts.saturation / seconds,
      droppedSpans,
      exportedSpans,
      failed,
      ...(cpuPerPipeline ? { cpuPerPipeline } : {}),
      ...(lagValues.length ? { queryableLag: { ...summarize(lagValues), samples: lagValues.length } } : {}),
      samples: { latencies, overheads, lags: lagValues },
    };
  } finally {
    await Promise.all(stageQueues.map((q) => q.close()));
    await stack.stop();
    await fetch.close();
    redis.disconnect();
  }
}
