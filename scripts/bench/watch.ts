import type { Queue } from "bullmq";
import type { ResearchStore } from "@tracelane/research-store";

/** A bench or load run that cannot give honest figures: a research failed, or nothing finished for too long. */
export class BenchRunError extends Error {
  override readonly name = "BenchRunError";
}

/** `BENCH_STALL_TIMEOUT_S` (default 60): a run with no completion for this long is stalled, not slow. */
export function stallTimeoutMsFromEnv(name = "BENCH_STALL_TIMEOUT_S", fallbackS = 60): number {
  const raw = process.env[name];
  const seconds = raw === undefined || raw.trim() === "" ? fallbackS : Number(raw);
  if (!Number.isFinite(seconds) || seconds <= 0) {
    console.error(`${name} must be a positive number of seconds (got "${raw}")`);
    process.exit(2);
  }
  return seconds * 1000;
}

export interface PipelineWatchOptions {
  /** For messages: which run this is, e.g. "pipeline (tracing off) round 2". */
  label: string;
  /** Every stage queue, first to last: a research can fail in any of them. */
  queues: Queue[];
  store: ResearchStore;
  stallMs: number;
  /** Extra lines for a stall report, e.g. the workers' /healthz (open circuits). */
  describe?: () => Promise<string[]>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Watches a run so that it ends: the first failed stage job (any queue) fails the run with
 * the research's error, and no completion for `stallMs` fails it with the queues' state.
 * Without this, the bench waited for completions that an open circuit breaker would
 * never let come, until it was killed (issue 10).
 */
export async function watchPipeline(opts: PipelineWatchOptions) {
  const failedBefore = await Promise.all(opts.queues.map((q) => q.getFailedCount()));

  const failures = async (): Promise<string | undefined> => {
    const failed = await Promise.all(opts.queues.map((q) => q.getFailedCount()));
    const total = failed.reduce((n, f, i) => n + f - failedBefore[i]!, 0);
    if (total === 0) return undefined;
    const lines: string[] = [];
    for (const q of opts.queues) {
      for (const job of await q.getFailed(0, 2)) {
        const id = (job.data as { researchId?: string } | undefined)?.researchId;
        const view = id ? await opts.store.get(id) : undefined;
        lines.push(`  ${q.name} job ${job.id}: ${view?.error ? `${view.error.type}: ${view.error.message}` : job.failedReason}`);
      }
    }
    return `${opts.label}: ${total} research${total === 1 ? "" : "es"} failed; the figures would not be the product's. First failures:\n${lines.join("\n")}`;
  };

  const stalled = async (what: string) => {
    const counts = await Promise.all(
      opts.queues.map(async (q) => {
        const c = await q.getJobCounts("waiting", "active", "delayed", "failed", "completed");
        return `  ${q.name}: ${Object.entries(c)
          .map(([k, v]) => `${k} ${v}`)
          .join(", ")}`;
      }),
    );
    const extra = (await opts.describe?.().catch((err: unknown) => [`  (could not describe the workers: ${String(err)})`])) ?? [];
    return new BenchRunError(
      `${opts.label}: stalled, ${what} in the last ${opts.stallMs / 1000} s (BENCH_STALL_TIMEOUT_S). Queues:\n${[...counts, ...extra].join("\n")}`,
    );
  };

  return {
    /** Throw if any research failed since the watch began. */
    async check() {
      const message = await failures();
      if (message) throw new BenchRunError(message);
    },
    /** Poll `done()` until it reaches `target`; fail fast on a failure or a stall. */
    async until(target: number, done: () => Promise<number>) {
      let last = -1;
      let lastProgress = Date.now();
      for (let tick = 0; ; tick++) {
        const n = await done();
        if (n >= target) return;
        if (n !== last) {
          last = n;
          lastProgress = Date.now();
        }
        // Failed counts are a few more round trips: every ~200 ms is enough to fail fast.
        if (tick % 10 === 0) await this.check();
        if (Date.now() - lastProgress > opts.stallMs) throw await stalled(`${Math.max(0, n)} of ${target} done, none more`);
        await sleep(20);
      }
    },
    /** For waits that are not counts (one research's event stream): fail with the queues' state. */
    stalled,
  };
}
