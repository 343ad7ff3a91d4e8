/**
 * `pnpm load [--jobs N] [--fault-rate R]`: submit N research requests (default
 * 2,000) through the api with faults injected by the simulator (default 10%),
 * then account for every one: completed, failed (with reasons), lost (never
 * reached a final state), duplicated (a stage completed twice). Failed, lost
 * and duplicated must be 0; the exit code says whether they were. It stops
 * waiting at the first failed research (saying why it failed), and when no
 * research has finished for --idle-timeout-s (LOAD_IDLE_TIMEOUT_S, default
 * 60): a stalled run exits non-zero instead of waiting forever.
 */
import { parseArgs } from "node:util";
import { isolatedRun, ONE_OF_EACH, startStack } from "@tracelane/launcher";
import { ResearchStore, type ResearchView } from "@tracelane/research-store";
import { createRedis } from "@tracelane/runtime";
import { mapLimit, percentile } from "./bench/stats.js";
import { table } from "./lib/format.js";
import { redisForRun } from "./lib/redis-for-run.js";

const { values } = parseArgs({
  options: {
    jobs: { type: "string", default: process.env.LOAD_JOBS ?? "2000" },
    "fault-rate": { type: "string", default: process.env.LOAD_FAULT_RATE ?? "0.1" },
    "fault-kinds": { type: "string", default: process.env.LOAD_FAULT_KINDS ?? "429,500,503,malformed" },
    concurrency: { type: "string", default: "64" },
    "idle-timeout-s": { type: "string", default: process.env.LOAD_IDLE_TIMEOUT_S ?? "60" },
  },
});
const jobs = Number(values.jobs);
const faultRate = Number(values["fault-rate"]);
if (!Number.isInteger(jobs) || jobs < 1) throw new Error(`--jobs must be a positive integer (got ${values.jobs})`);
if (!(faultRate >= 0 && faultRate <= 1)) throw new Error(`--fault-rate must be between 0 and 1 (got ${values["fault-rate"]})`);
const idleTimeoutMs = Number(values["idle-timeout-s"]) * 1000;
if (!(idleTimeoutMs > 0)) throw new Error(`--idle-timeout-s must be a positive number of seconds (got ${values["idle-timeout-s"]})`);

const log = (m: string) => console.log(`• ${m}`);
const redisRun = await redisForRun(log);
const { prefixes, env: isolated } = isolatedRun("load");
const stack = await startStack({
  redisUrl: redisRun.url,
  replicas: ONE_OF_EACH,
  env: {
    ...isolated,
    LLM_SIM_FAULT_RATE: String(faultRate),
    LLM_SIM_FAULT_KINDS: values["fault-kinds"],
    LLM_SIM_RETRY_AFTER_S: "1",
    LLM_RETRY_BASE_MS: "100",
    JOB_BACKOFF_MS: "200",
    WORKER_CONCURRENCY: "32",
    LOG_LEVEL: "error",
  },
});
const redis = createRedis(redisRun.url, "worker");
const store = new ResearchStore(redis, { prefix: prefixes.research });

try {
  log(`submitting ${jobs} research requests (fault rate ${faultRate}, kinds ${values["fault-kinds"]})`);
  const t0 = performance.now();
  const ids = await mapLimit(
    Array.from({ length: jobs }, (_, i) => i),
    Number(values.concurrency),
    async (i) => {
      const res = await fetch(`${stack.apiUrl}/v1/research`, {
        method: "POST",
        headers: { "content-type": "application/json", "idempotency-key": `${prefixes.queue}-${i}` },
        body: JSON.stringify({ query: `Load test question ${i}: what drives the cost of grid-scale storage?` }),
      });
      if (res.status !== 202) throw new Error(`submit ${i} -> ${res.status}: ${await res.text()}`);
      return ((await res.json()) as { id: string }).id;
    },
  );
  log(`submitted in ${((performance.now() - t0) / 1000).toFixed(1)} s; waiting for every research to finish`);

  let views: ResearchView[] = [];
  let lastFinal = -1;
  let lastProgress = Date.now();
  /** Why the wait ended early, if it did. */
  let stoppedEarly: string | undefined;
  for (;;) {
    views = (await mapLimit(ids, 64, (id) => store.get(id))).filter((v): v is ResearchView => v !== undefined);
    const final = views.filter((v) => ["completed", "failed", "cancelled"].includes(v.status)).length;
    if (final === ids.length) break;
    const firstFailed = views.find((v) => v.status === "failed");
    if (firstFailed) {
      stoppedEarly = `research ${firstFailed.id} failed (${firstFailed.error?.stage ?? "-"}: ${firstFailed.error?.type ?? "unknown"}: ${firstFailed.error?.message ?? ""}); stopped waiting for the rest`;
      break;
    }
    if (final !== lastFinal) {
      lastFinal = final;
      lastProgress = Date.now();
      process.stdout.write(`\r  ${final}/${ids.length} final`);
    }
    if (Date.now() - lastProgress > idleTimeoutMs) {
      stoppedEarly = `stalled: no research finished in the last ${idleTimeoutMs / 1000} s (--idle-timeout-s / LOAD_IDLE_TIMEOUT_S), ${final} of ${ids.length} final`;
      break;
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  const seconds = (performance.now() - t0) / 1000;
  console.log();

  const completed = views.filter((v) => v.status === "completed");
  const failed = views.filter((v) => v.status === "failed");
  // Not final when the wait stopped early: "unfinished", not (yet) lost.
  const unfinished = ids.length - completed.length - failed.length - views.filter((v) => v.status === "cancelled").length;
  const lost = stoppedEarly ? 0 : unfinished;
  let duplicated = 0;
  await mapLimit(ids, 64, async (id) => {
    const counts = new Map<string, number>();
    for (const e of await store.events(id, "0", 1000)) {
      if (e.type === "stage.completed" && e.stage) counts.set(e.stage, (counts.get(e.stage) ?? 0) + 1);
    }
    if ([...counts.values()].some((n) => n > 1)) duplicated++;
  });
  const reasons = new Map<string, number>();
  for (const v of failed) {
    const key = `${v.error?.stage ?? "-"}: ${v.error?.type ?? "unknown"}`;
    reasons.set(key, (reasons.get(key) ?? 0) + 1);
  }
  const latencies = completed.map((v) => v.totals.latencyMs);

  console.log(
    table(
      ["submitted", "completed", "failed", stoppedEarly ? "unfinished" : "lost", "duplicated", "p50 ms", "p99 ms", "pipelines/s"],
      [
        [
          ids.length,
          completed.length,
          failed.length,
          stoppedEarly ? unfinished : lost,
          duplicated,
          percentile(latencies, 50),
          percentile(latencies, 99),
          (completed.length / seconds).toFixed(1),
        ],
      ],
    ),
  );
  if (reasons.size) {
    console.log("\nfailures by stage and reason:");
    for (const [reason, n] of [...reasons].sort((a, b) => b[1] - a[1])) console.log(`  ${n}  ${reason}`);
  }
  const sim = (await (await fetch(`${stack.simulatorUrl}/_sim/stats`)).json()) as { requests: number; faults: Record<string, number> };
  console.log(`\nsimulator: ${sim.requests} model requests, faults injected: ${JSON.stringify(sim.faults)}`);
  const problems = [
    ...(stoppedEarly ? [stoppedEarly] : []),
    ...(failed.length ? [`${failed.length} research(es) failed`] : []),
    ...(lost ? [`${lost} research(es) lost (never reached a final state)`] : []),
    ...(duplicated ? [`${duplicated} research(es) with a stage completed twice`] : []),
  ];
  if (problems.length) console.error(`\nload failed: ${problems.join("; ")}`);
  process.exitCode = problems.length ? 1 : 0;
} finally {
  redis.disconnect();
  await stack.stop();
  await redisRun.ephemeral?.destroy();
}
