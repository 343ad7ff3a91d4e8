import { randomUUID } from "node:crypto";
import { Queue, Worker } from "bullmq";
import { Redis } from "ioredis";
import { cpuSampler, type CpuSplit } from "./cpu-split.js";
import { summarize, type LatencySummary } from "./stats.js";
import { BenchRunError } from "./watch.js";

export interface ChainResult {
  oneInFlight: LatencySummary;
  throughputPerSec: number;
  /** CPU ms per pipeline at saturation: this process (the whole chain), redis-server, and `extraPids`. */
  cpuPerPipeline?: CpuSplit;
}

/**
 * The baseline: three BullMQ queues chained by workers that only enqueue the
 * next stage — no HTTP, no tracing, no research record; with `modelCall`, each
 * stage also makes that call (the hand-rolled equivalent of a stage worker).
 */
export async function benchRawChain(
  redisUrl: string,
  opts: {
    sequential: number;
    saturation: number;
    concurrency: number;
    modelCall?: (stage: number) => Promise<unknown>;
    /** Other processes doing the chain's work (the simulator), for the CPU split. */
    extraPids?: Record<string, number>;
  },
): Promise<ChainResult> {
  const connection = new Redis(redisUrl, { maxRetriesPerRequest: null });
  const prefix = `bench-raw-${randomUUID().slice(0, 8)}`;
  const names = ["raw-a", "raw-b", "raw-c"];
  const queues = names.map((n) => new Queue(n, { connection, prefix, defaultJobOptions: { removeOnComplete: true, removeOnFail: true } }));
  const done = new Map<string, { resolve: () => void; reject: (err: Error) => void }>();
  const workers = names.map(
    (n, i) =>
      new Worker(
        n,
        async (job) => {
          await opts.modelCall?.(i);
          if (i < 2) await queues[i + 1]!.add("s", job.data, { jobId: `${job.data.id}-${i + 1}` });
          else done.get(job.data.id as string)?.resolve();
        },
        { connection, prefix, concurrency: opts.concurrency },
      ),
  );
  await Promise.all(workers.map((w) => w.waitUntilReady()));
  // A failed job (a model call that threw) ends the run instead of leaving its chain waiting forever.
  workers.forEach((w, i) =>
    w.on("failed", (job, err) => {
      const id = job?.data?.id as string | undefined;
      if (id) done.get(id)?.reject(new BenchRunError(`raw chain: stage ${names[i]} failed for ${id}: ${err.message}`));
    }),
  );

  const runOne = (id: string) =>
    new Promise<void>((resolve, reject) => {
      done.set(id, {
        resolve: () => {
          done.delete(id);
          resolve();
        },
        reject: (err) => {
          done.delete(id);
          reject(err);
        },
      });
      void queues[0]!.add("s", { id }, { jobId: `${id}-0` });
    });

  try {
    const latencies: number[] = [];
    for (let i = 0; i < opts.sequential; i++) {
      const t = performance.now();
      await runOne(randomUUID().replaceAll("-", ""));
      latencies.push(performance.now() - t);
    }
    const cpu = cpuSampler({ "raw chain (driver)": process.pid, ...opts.extraPids }, connection);
    const cpuBefore = cpu.available ? await cpu.snapshot() : undefined;
    const t0 = performance.now();
    await Promise.all(Array.from({ length: opts.saturation }, () => runOne(randomUUID().replaceAll("-", ""))));
    const seconds = (performance.now() - t0) / 1000;
    const cpuPerPipeline = cpuBefore ? await cpu.since(cpuBefore, opts.saturation) : undefined;
    return {
      oneInFlight: summarize(latencies),
      throughputPerSec: opts.saturation / seconds,
      ...(cpuPerPipeline ? { cpuPerPipeline } : {}),
    };
  } finally {
    // force: a failed run leaves jobs active; nothing should keep the process alive after it.
    await Promise.all(workers.map((w) => w.close(true)));
    await Promise.all(queues.map((q) => q.obliterate({ force: true }).then(() => q.close())));
    connection.disconnect();
  }
}
