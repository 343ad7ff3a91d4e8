/**
 * `pnpm bench`: the pipeline against a raw BullMQ chain on the same Redis, in
 * one run, with tracing on and off; then the trace-collector's ingest rate.
 * Sizes: BENCH_SEQUENTIAL (one in flight, default 200), BENCH_JOBS (saturation, default 2000),
 * BENCH_ROUNDS (tracelane on/off pairs, pooled; default 2).
 * Fails (exit 1, saying why) as soon as a research fails, or when nothing completes for
 * BENCH_STALL_TIMEOUT_S (default 60): figures from such a run would not be the product's.
 */
import { availableParallelism } from "node:os";
import OpenAI from "openai";
import { startStack } from "@tracelane/launcher";
import { createKeepAliveFetch } from "@tracelane/runtime";
import { startRedisServer } from "@tracelane/testkit";
import { table } from "../lib/format.js";
import { benchChainIngest } from "./chain-ingest.js";
import { benchCluster } from "./cluster.js";
import { benchCollector } from "./collector.js";
import { benchFanOut, type FanOutResult } from "./fan-out.js";
import { benchRedisFootprint } from "./redis-footprint.js";
import { benchPipeline, PIPELINE_WARM_UP, poolRounds, type PipelineResult } from "./pipeline.js";
import { benchRawChain } from "./raw-chain.js";
import type { LatencySummary } from "./stats.js";
import { BenchRunError, stallTimeoutMsFromEnv } from "./watch.js";

/** A positive integer from the environment, or exit saying which variable is wrong. */
function sizeFromEnv(name: string, fallback: number): number {
  const raw = process.env[name];
  const value = raw === undefined || raw.trim() === "" ? fallback : Number(raw);
  if (!Number.isInteger(value) || value < 1) {
    console.error(`${name} must be a positive integer (got "${raw}")`);
    process.exit(2);
  }
  return value;
}

const sequential = sizeFromEnv("BENCH_SEQUENTIAL", 200);
const saturation = sizeFromEnv("BENCH_JOBS", 2000);
const concurrency = sizeFromEnv("BENCH_WORKER_CONCURRENCY", 32);
const collectorSpans = sizeFromEnv("BENCH_COLLECTOR_SPANS", 100_000);
const rounds = sizeFromEnv("BENCH_ROUNDS", 2);
const stallMs = stallTimeoutMsFromEnv();
const fanOutSequential = sizeFromEnv("BENCH_FAN_OUT_SEQUENTIAL", 30);
const fanOutSaturation = sizeFromEnv("BENCH_FAN_OUT_JOBS", 300);
const fanOutLatencyMs = sizeFromEnv("BENCH_FAN_OUT_LATENCY_MS", 200);
const footprintResearches = sizeFromEnv("BENCH_FOOTPRINT_RESEARCHES", 200);
/** BENCH_PARTS=fan-out (or pipeline, redis, cluster; comma-separated) runs only those rows (all of them by default). */
const parts = new Set((process.env.BENCH_PARTS ?? "all").split(",").map((p) => p.trim()));
// A run counts completions on the synthesis queue, which keeps the last 10,000 completed jobs.
if (sequential + saturation + PIPELINE_WARM_UP > 10_000) {
  console.error(
    `BENCH_SEQUENTIAL + BENCH_JOBS may be at most ${10_000 - PIPELINE_WARM_UP}: a run counts completed jobs and a queue keeps the last 10,000`,
  );
  process.exit(2);
}

/** CPU ms per pipeline by process, one column per run: on a CPU-bound machine this is where throughput goes. */
function printCpuSplit(columns: Array<[string, Record<string, number> | undefined]>) {
  const measured = columns.filter((c): c is [string, Record<string, number>] => c[1] !== undefined);
  if (measured.length === 0) return; // not Linux
  const names = [...new Set(measured.flatMap(([, split]) => Object.keys(split)))];
  const cell = (split: Record<string, number>, name: string) => (split[name] === undefined ? "-" : split[name]!.toFixed(2));
  const totals = measured.map(([, split]) => Object.values(split).reduce((a, b) => a + b, 0));
  const cores = availableParallelism();
  console.log(`\nCPU ms per pipeline at saturation, by process (${cores} cores: ceiling = cores x 1000 / total):`);
  console.log(
    table(
      ["process", ...measured.map(([label]) => label)],
      [
        ...names.map((name) => [name, ...measured.map(([, split]) => cell(split, name))]),
        ["total", ...totals.map((t) => t.toFixed(2))],
        ["ceiling pipelines/s", ...totals.map((t) => ((cores * 1000) / t).toFixed(0))],
      ],
    ),
  );
}

/**
 * The fan-out: a research whose fact-check checks 6 claims with one tool turn each (14 model calls), beside the
 * same pipeline with one claim and no tools (3 calls: the shape of the rows below), on the same Redis in the
 * same run. At saturation: researches and model calls per second. One in flight, with every model call taking
 * BENCH_FAN_OUT_LATENCY_MS: the research against its critical path (analysis + slowest claim + synthesis).
 */
async function fanOutRows() {
  const common = { sequential: fanOutSequential, saturation: fanOutSaturation, concurrency, latencyMs: fanOutLatencyMs, stallMs };
  const rows: FanOutResult[] = [];
  rows.push(await benchFanOut(redisUrl, { ...common, label: "3-call pipeline (1 claim, no tools)", maxClaims: 1, maxToolTurns: 0 }));
  console.log("fan-out baseline (3 calls) done");
  rows.push(await benchFanOut(redisUrl, { ...common, label: "fan-out (6 claims, 1 tool turn each)", maxClaims: 6, maxToolTurns: 1 }));
  console.log("fan-out (6 claims) done\n");
  const f = (n: number) => n.toFixed(1);
  console.log(
    table(
      [
        "",
        "calls",
        "researches/s",
        "model calls/s",
        `p50 ms (${fanOutLatencyMs} ms calls)`,
        "critical path p50 ms",
        "overhead p50 ms",
        "overhead / critical",
      ],
      rows.map((r) => [
        r.label,
        f(r.callsPerResearch),
        f(r.researchesPerSec),
        f(r.callsPerSec),
        f(r.oneInFlight.p50Ms),
        f(r.oneInFlight.criticalPathP50Ms),
        f(r.oneInFlight.overheadP50Ms),
        `${(r.oneInFlight.overheadShareP50 * 100).toFixed(1)}%`,
      ]),
    ),
  );
  const [base, fan] = rows as [FanOutResult, FanOutResult];
  console.log(
    `fan-out overhead beyond its critical path: ${(fan.oneInFlight.overheadShareP50 * 100).toFixed(1)}% (target < 10%; the 3-call pipeline's: ${(base.oneInFlight.overheadShareP50 * 100).toFixed(1)}%)` +
      `\nmodel calls/s, fan-out vs 3-call: ${(fan.callsPerSec / base.callsPerSec).toFixed(2)}x; researches/s: ${(fan.researchesPerSec / base.researchesPerSec).toFixed(2)}x\n`,
  );
}

/**
 * What Redis spends and keeps per research (each configuration on its own redis-server, so its counters are its
 * own): CPU, commands and Lua time from RESETSTAT, and MEMORY USAGE by key family once every trace is assembled,
 * beside a raw BullMQ chain of three jobs.
 */
async function redisRows() {
  const rows = await benchRedisFootprint(footprintResearches);
  const f = (n: number, d = 1) => n.toFixed(d);
  console.log(`\nRedis per research (${footprintResearches} researches each, tracing on, default retention):`);
  console.log(
    table(
      ["", "Redis CPU ms", "commands", "Lua calls", "Lua us", "KB kept"],
      rows.map((r) => [
        r.label,
        f(r.redisCpuMsPer, 2),
        f(r.commandsPer),
        f(r.scriptCallsPer),
        f(r.scriptUsecPer, 0),
        f(Object.values(r.bytesPer).reduce((a, b) => a + b, 0) / 1024),
      ]),
    ),
  );
  const families = [...new Set(rows.flatMap((r) => Object.keys(r.bytesPer)))].sort();
  console.log("\nbytes kept per research, by key family:");
  console.log(
    table(
      ["key family", ...rows.slice(1).map((r) => r.label)],
      families.map((fam) => [fam, ...rows.slice(1).map((r) => (r.bytesPer[fam] === undefined ? "-" : Math.round(r.bytesPer[fam]!)))]),
    ),
  );
  for (const r of rows) {
    console.log(
      `top commands by Redis time, ${r.label}: ${r.topCommands.map((c) => `${c.command} ${f(c.callsPer)}x ${f(c.usecPer, 0)} us`).join(", ")}`,
    );
  }
}

/**
 * The same product on a real Redis Cluster (3 masters + 3 replicas on this machine): Redis CPU and commands per
 * research on each master, and the share of commands and keys each holds. Compare the CPU column's sum with the
 * `redis` part's single-Redis row of the same run.
 */
async function clusterRows() {
  const f = (n: number, d = 1) => n.toFixed(d);
  for (const [label, env] of [
    ["3-call pipeline (1 claim, no tools)", { MAX_CLAIMS: "1", MAX_TOOL_TURNS: "0" }],
    ["fan-out (8 claims, default)", {}],
  ] as const) {
    const run = await benchCluster(footprintResearches, env);
    console.log(`
Redis Cluster, ${label}: ${run.researches} researches in ${f(run.seconds)} s, per master (shard):`);
    console.log(
      table(
        ["shard", "slots", "Redis CPU ms / research", "commands / research", "share of commands", "share of keys"],
        [
          ...run.shards.map((s) => [
            `:${s.port}`,
            s.slots,
            f(s.cpuMsPer, 2),
            f(s.commandsPer),
            `${f(s.commandShare * 100)}%`,
            `${f(s.keyShare * 100)}%`,
          ]),
          [
            "all masters",
            run.shards.reduce((n, s) => n + s.slots, 0),
            f(
              run.shards.reduce((n, s) => n + s.cpuMsPer, 0),
              2,
            ),
            f(run.shards.reduce((n, s) => n + s.commandsPer, 0)),
            "100%",
            "100%",
          ],
        ],
      ),
    );
  }
}

const redis = process.env.REDIS_URL ? undefined : await startRedisServer();
const redisUrl = process.env.REDIS_URL ?? redis!.url;
console.log(
  `bench: ${sequential} sequential, ${saturation} at saturation, ${rounds} rounds of tracelane on/off, worker concurrency ${concurrency}, redis ${redisUrl}`,
);

try {
  if (parts.has("all") || parts.has("fan-out")) await fanOutRows();
  if (parts.has("all") || parts.has("redis")) await redisRows();
  if (parts.has("all") || parts.has("cluster")) await clusterRows();
  if (parts.has("all") || parts.has("pipeline")) {
    const raw = await benchRawChain(redisUrl, { sequential, saturation, concurrency });
    console.log("raw chain done");
    // The same chain making the same three model calls as the stage workers, by hand (over the same
    // HTTP transport): the difference is what tracelane adds on top.
    const sim = await startStack({ redisUrl, replicas: { "llm-simulator": 1 }, env: { LOG_LEVEL: "warn" } });
    // The stage workers' transport (undici's Agent), so the difference is what tracelane adds.
    const simFetch = createKeepAliveFetch();
    const client = new OpenAI({
      baseURL: `${sim.simulatorUrl}/v1`,
      apiKey: "sk-simulator",
      maxRetries: 0,
      timeout: stallMs,
      fetch: simFetch,
    });
    const models = ["gpt-4.1", "gemini-2.5-flash", "deepseek-v3.2"];
    const rawWithModel = await benchRawChain(redisUrl, {
      sequential,
      saturation,
      concurrency,
      extraPids: { "llm-simulator": sim.byService("llm-simulator")[0]!.child.pid! },
      modelCall: (stage) =>
        client.chat.completions.create({
          model: models[stage]!,
          messages: [{ role: "user", content: `stage ${stage} question` }],
          max_tokens: 1024,
        }),
    }).finally(async () => {
      await sim.stop();
      await simFetch.close();
    });
    console.log("raw chain with model calls done");
    // On and off alternate, round after round, so a slow spell of the shared machine hits both.
    const onRounds: PipelineResult[] = [];
    const offRounds: PipelineResult[] = [];
    for (let round = 1; round <= rounds; round++) {
      const common = { sequential, saturation, concurrency, submitConcurrency: 64, stallMs };
      onRounds.push(await benchPipeline(redisUrl, { ...common, tracing: true, label: `pipeline (tracing on) round ${round}` }));
      console.log(`pipeline (tracing on) round ${round} done`);
      offRounds.push(await benchPipeline(redisUrl, { ...common, tracing: false, label: `pipeline (tracing off) round ${round}` }));
      console.log(`pipeline (tracing off) round ${round} done`);
    }
    const on = poolRounds(onRounds);
    const off = poolRounds(offRounds);
    console.log("");

    const f = (n: number) => n.toFixed(1);
    const row = (
      label: string,
      r: { oneInFlight: LatencySummary; throughputPerSec: number },
      failed: number | string,
      dropped: number | string,
    ) => [label, f(r.oneInFlight.p50), f(r.oneInFlight.p95), f(r.oneInFlight.p99), f(r.throughputPerSec), failed, dropped];
    console.log(
      table(
        ["", "p50 ms", "p95 ms", "p99 ms", "pipelines/s", "failed", "spans dropped"],
        [
          row("raw BullMQ chain (baseline)", raw, "-", "-"),
          row("raw chain + 3 openai calls", rawWithModel, "-", "-"),
          row("tracelane, tracing on", on, on.failed, on.droppedSpans),
          row("tracelane, OTEL_SDK_DISABLED", off, off.failed, "-"),
        ],
      ),
    );
    console.log(
      `\none in flight without the model calls (HTTP to the simulator): tracing on p50 ${f(on.overheadExcludingModel.p50)} / p95 ${f(on.overheadExcludingModel.p95)} / p99 ${f(on.overheadExcludingModel.p99)} ms; ` +
        `off p50 ${f(off.overheadExcludingModel.p50)} ms`,
    );
    console.log(
      `\np50 one-in-flight vs raw chain: ${(on.oneInFlight.p50 / raw.oneInFlight.p50).toFixed(2)}x (target <= 2x)` +
        `\nthroughput vs raw chain: ${(on.throughputPerSec / raw.throughputPerSec).toFixed(2)} (target >= 0.5)` +
        `\nagainst the raw chain making the same model calls: p50 ${(on.oneInFlight.p50 / rawWithModel.oneInFlight.p50).toFixed(2)}x, throughput ${(on.throughputPerSec / rawWithModel.throughputPerSec).toFixed(2)}` +
        `\nthroughput tracing on/off: ${(on.throughputPerSec / off.throughputPerSec).toFixed(2)} (target >= 0.8; by round: ${on.rounds!.map((t, i) => (t / off.rounds![i]!).toFixed(2)).join(", ")})` +
        `\nspans exported by workers: ${on.exportedSpans}, dropped: ${on.droppedSpans} (target 0)`,
    );
    printCpuSplit([
      ["raw chain", raw.cpuPerPipeline],
      ["raw + openai", rawWithModel.cpuPerPipeline],
      ["tracing on", on.cpuPerPipeline],
      ["tracing off", off.cpuPerPipeline],
    ]);
    if (on.queryableLag) {
      console.log(
        `research finished -> trace queryable at saturation: p50 ${f(on.queryableLag.p50)} ms, p99 ${f(on.queryableLag.p99)} ms (${on.queryableLag.samples} samples)`,
      );
    }

    console.log("\ntrace-collector ingest (one process), beside raw XREAD + JSON.parse of the same entries:");
    const collector = await benchCollector({ redisUrl, spans: collectorSpans });
    console.log(
      table(
        ["", "spans/s"],
        [
          ["baseline: XREAD + JSON.parse", Math.round(Number(collector.baselineXreadJsonParseSpansPerSec))],
          ["collector: decode + assemble + price + rules", Math.round(Number(collector.collectorSpansPerSec))],
        ],
      ),
    );
    console.log(`target >= 20,000 spans/s: ${collector.meetsTarget}`);

    console.log("\ntrace-collector: one span posted into a parent->child chain of N spans (median of 50 posts):");
    const chain = await benchChainIngest(redisUrl);
    console.log(
      table(
        ["chain spans", "ms per span", "baseline: re-assemble every batch", "GET trace + JSON ms"],
        chain.map((r) => [r.chainSpans, r.perSpanMs.toFixed(2), r.baselinePerSpanMs.toFixed(2), r.getMs.toFixed(1)]),
      ),
    );
    const [small, large] = [chain[0]!, chain[chain.length - 1]!];
    console.log(
      `per-span cost at N=${large.chainSpans} vs N=${small.chainSpans}: ${(large.perSpanMs / small.perSpanMs).toFixed(1)}x (O(1): about 1x; baseline ${(large.baselinePerSpanMs / small.baselinePerSpanMs).toFixed(1)}x)`,
    );
  }
} catch (err) {
  console.error(
    `\nbench failed: ${err instanceof BenchRunError ? err.message : err instanceof Error ? (err.stack ?? err.message) : String(err)}`,
  );
  process.exitCode = 1;
} finally {
  await redis?.destroy();
}
// A failed run may leave a connection retrying somewhere; the verdict is in, so do not wait for it.
if (process.exitCode) process.exit(process.exitCode);
