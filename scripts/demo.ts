/**
 * `pnpm demo [query]`: start the whole pipeline, run one research request
 * end to end, print what happened, stop everything. Ctrl-C or SIGTERM (also to the pnpm
 * that runs it) stops the services in order and removes the private Redis.
 */
import { buildConsole } from "@tracelane/console/build";
import { ONE_OF_EACH, startStack, type Stack } from "@tracelane/launcher";
import { RESEARCH_PIPELINE } from "@tracelane/pipeline";
import type { ResearchView } from "@tracelane/research-store";
import { watchParent } from "@tracelane/runtime";
import { modelCallsOfResearch, readServerSentEvents } from "@tracelane/testkit";
import { ms, table, usd } from "./lib/format.js";
import { jaegerLine } from "./lib/jaeger-status.js";
import { redisForRun } from "./lib/redis-for-run.js";

const DEFAULT_QUERY = "How have lithium-ion battery pack prices changed since 2015, and what drives the decline?";

const log = (msg: string) => console.log(`• ${msg}`);
const verbose = process.env.DEMO_VERBOSE === "true";

const external = Boolean(process.env.LLM_BASE_URL);

async function main(): Promise<number> {
  const query = process.argv.slice(2).join(" ").trim() || DEFAULT_QUERY;
  let stack: Stack | undefined;
  let interrupted: string | undefined;
  let cleanup: Promise<void> | undefined;
  const stopAll = (redis: Awaited<ReturnType<typeof redisForRun>> | undefined) =>
    (cleanup ??= (async () => {
      await stack?.stop();
      await redis?.ephemeral?.destroy();
      log("stopped everything the demo started");
    })());
  // Stop in order on Ctrl-C, SIGTERM, or when the pnpm that runs us is killed (it does not pass SIGTERM on).
  let redis: Awaited<ReturnType<typeof redisForRun>> | undefined;
  const interrupt = (why: string) => {
    if (interrupted) return;
    interrupted = why;
    log(`${why}: stopping`);
    // While the stack is starting it cannot be stopped yet; the start below finishes, then stops.
    if (stack || !redis) void stopAll(redis).then(() => process.exit(130));
  };
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) process.on(signal, () => interrupt(signal));
  watchParent(() => interrupt("the parent process (pnpm) exited"));

  // The api serves the web console from packages/console/dist (rebuilt when its sources changed).
  await buildConsole({ ifStale: true });
  redis = await redisForRun(log);
  log(external ? `model provider: ${process.env.LLM_BASE_URL}` : "model provider: the built-in LLM simulator (no real model is called)");

  try {
    stack = await startStack({
      redisUrl: redis.url,
      replicas: { ...ONE_OF_EACH, "llm-simulator": external ? 0 : 1 },
      env: {
        LOG_LEVEL: process.env.LOG_LEVEL ?? "warn",
        // Realistic-looking model latency from the simulator.
        LLM_SIM_LATENCY_MS: process.env.LLM_SIM_LATENCY_MS ?? "400",
        LLM_SIM_JITTER_MS: process.env.LLM_SIM_JITTER_MS ?? "300",
      },
      ...(verbose ? { echo: (svc: string, line: string) => console.log(`  [${svc}] ${line}`) } : {}),
    });
    if (interrupted) {
      await stopAll(redis);
      return 130;
    }
    log(`services up: ${stack.processes.map((p) => p.name).join(", ")}`);
    const code = await runResearch(stack.apiUrl!, query);
    // On a terminal, keep the services up so the console link and the CLI lines above work.
    if (process.stdin.isTTY && !interrupted) await untilEnter();
    return code;
  } finally {
    await stopAll(redis);
  }
}

/** With API_KEYS set for the api, the demo's own calls carry TRACELANE_API_KEY (as the CLI's do). */
const auth = (): Record<string, string> =>
  process.env.TRACELANE_API_KEY ? { authorization: `Bearer ${process.env.TRACELANE_API_KEY}` } : {};

async function runResearch(api: string, query: string): Promise<number> {
  console.log(`\nResearch question: ${query}\n`);
  const res = await fetch(`${api}/v1/research`, {
    method: "POST",
    headers: { "content-type": "application/json", ...auth() },
    body: JSON.stringify({ query }),
  });
  const created = (await res.json()) as { id: string; traceId: string; error?: { message: string } };
  if (res.status !== 202) {
    console.error(`submit failed (${res.status}): ${created.error?.message}`);
    if (res.status === 401) console.error("The api has API_KEYS set: run the demo with TRACELANE_API_KEY=<one of them>.");
    return 1;
  }
  log(`submitted research ${created.id} (trace ${created.traceId})`);

  const started = Date.now();
  let streaming = false;
  for await (const ev of readServerSentEvents(`${api}/v1/research/${created.id}/events`)) {
    const event = JSON.parse(ev.data) as {
      stage?: string;
      data?: {
        model?: string;
        latencyMs?: number;
        attempt?: number;
        error?: { message?: string };
        claim?: number;
        verdict?: string;
        costUsd?: number | null;
      };
    };
    const data = { stage: event.stage, ...event.data };
    const t = `+${((Date.now() - started) / 1000).toFixed(2)}s`;
    if (ev.event === "stage.started") log(`${t} ${data.stage} started on ${data.model} (attempt ${data.attempt})`);
    else if (ev.event === "stage.completed") log(`${t} ${data.stage} completed in ${ms(data.latencyMs)}`);
    else if (ev.event === "stage.retrying") log(`${t} ${data.stage} failed, retrying: ${data.error?.message}`);
    else if (ev.event === "claim.completed")
      log(`${t}   claim ${data.claim}: ${data.verdict} (${ms(data.latencyMs)}, ${usd(data.costUsd)})`);
    else if (ev.event === "claim.retrying") log(`${t}   claim ${data.claim} failed, retrying: ${data.error?.message}`);
    else if (ev.event.endsWith(".delta") && !streaming) {
      streaming = true;
      log(`${t} ${data.stage} is writing the report (streamed: the console and GET /v1/research/:id/events show it live)`);
    } else if (ev.event.startsWith("research.") && ev.event !== "research.queued") log(`${t} ${ev.event}`);
  }

  const view = (await (await fetch(`${api}/v1/research/${created.id}`, { headers: auth() })).json()) as ResearchView & {
    links?: { ui?: string };
  };
  if (view.status !== "completed") {
    console.error(`\nresearch ended ${view.status}: ${view.error?.type} at ${view.error?.stage}: ${view.error?.message}`);
    return 1;
  }
  // The last stage's output is the report.
  const report = view.result?.[RESEARCH_PIPELINE.stage(RESEARCH_PIPELINE.last).output];
  if (external) console.log(`\n=== Final report (from ${process.env.LLM_BASE_URL}) ===\n\n${report}\n`);
  else {
    console.log(`\n=== Final report: written by the built-in LLM simulator, not a real model ===\n`);
    console.log("(The simulator returns plausible-looking placeholder text, so this demo runs offline and free;");
    console.log(" the stages, tokens, costs and trace below are real. For a real model: LLM_BASE_URL and LLM_API_KEY.)\n");
    console.log(`${report}\n`);
  }
  const rows = RESEARCH_PIPELINE.names.map((s) => {
    const st = view.stages[s];
    return [
      s,
      st.model ?? "-",
      st.usage?.inputTokens ?? 0,
      st.usage?.outputTokens ?? 0,
      usd(st.costUsd),
      ms(st.latencyMs),
      ms(st.queueWaitMs),
    ];
  });
  rows.push(["total", "", view.totals.inputTokens, view.totals.outputTokens, usd(view.totals.costUsd), ms(view.totals.latencyMs), ""]);
  console.log(table(["stage", "model", "tokens in", "tokens out", "cost", "latency", "queue wait"], rows));
  // The fan-out: each claim the analysis made, checked as its own job with the search tool.
  const fanOut = RESEARCH_PIPELINE.fanOutStage;
  const claims = fanOut ? (view.stages[fanOut].claims ?? []) : [];
  if (claims.length > 0) {
    console.log(`\n${fanOut}: ${claims.length} claims, each checked as its own job (in parallel across replicas)`);
    const claimRows = claims.map((c) => [
      c.index,
      c.verdict ?? c.status,
      c.modelCalls ?? 0,
      c.toolCalls ?? 0,
      usd(c.costUsd),
      ms(c.latencyMs),
      c.claim.length > 72 ? `${c.claim.slice(0, 71)}…` : c.claim,
    ]);
    console.log(table(["#", "verdict", "calls", "searches", "cost", "latency", "claim"], claimRows, [0, 1, 6]));
  }
  console.log(`\ntrace id: ${view.traceId}`);
  // Complete once every model call is in: one per stage, and each claim's turns.
  await printReplay(api, view.traceId, modelCallsOfResearch(view));
  printLinks(api, view);
  return 0;
}

/** Where to look next: the console page of the research's trace, and the same research from the CLI. */
function printLinks(api: string, view: { id: string; traceId: string | null; links?: { ui?: string } }): void {
  const ui = view.links?.ui ?? (view.traceId ? `/ui/traces/${view.traceId}` : undefined);
  console.log("");
  if (ui) console.log(`console: ${new URL(ui, api).toString()}`);
  console.log(`queues:  ${api}/admin/queues (Bull Board)`);
  console.log(`CLI:     TRACELANE_URL=${api} pnpm tracelane status ${view.id}`);
  console.log(`         (also tracelane trace <traceId>, tracelane traces --since 1h, tracelane costs; pnpm tracelane --help)`);
  if (!process.stdin.isTTY) {
    console.log("(not run on a terminal, so the demo stops its services now and these stop answering; pnpm start keeps them up)");
  }
}

/** Resolves when the user presses Enter (Ctrl-C goes to the signal handler, which stops everything). */
function untilEnter(): Promise<void> {
  log("the services stay up so you can open the console and try the CLI: press Enter to stop everything");
  return new Promise((resolve) => {
    process.stdin.resume();
    process.stdin.once("data", () => {
      process.stdin.pause();
      resolve();
    });
  });
}

/** The collector assembles spans asynchronously; wait until the whole pipeline is in, then show it. */
async function printReplay(api: string, traceId: string | null, calls: number): Promise<void> {
  if (!traceId) return;
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    const res = await fetch(`${api}/v1/traces/${traceId}`, { headers: auth() }).catch(() => undefined);
    if (res?.ok) {
      const trace = (await res.json()) as {
        summary: { callCount: number; stages: string[] };
        anomalies: Array<{ type: string; stage?: string; recommendation?: string }>;
        tree: unknown[];
        links?: { jaeger?: string };
      };
      // Complete once every model call is in, and the last stage's consumer span.
      const last = RESEARCH_PIPELINE.stage(RESEARCH_PIPELINE.last);
      const complete = trace.summary.callCount >= calls && JSON.stringify(trace.tree).includes(`"process ${last.queue}"`);
      if (complete) {
        const replay = await (await fetch(`${api}/v1/traces/${traceId}/replay`, { headers: auth() })).text();
        console.log(`\n=== Trace ${traceId} (assembled by the trace-collector) ===\n${replay}`);
        for (const a of trace.anomalies) console.log(`anomaly: ${a.type}${a.stage ? ` at ${a.stage}` : ""} — ${a.recommendation ?? ""}`);
        console.log(await jaegerLine(traceId, trace.links?.jaeger));
        return;
      }
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  console.log("(the trace is still being assembled; query it later with GET /v1/traces/<traceId>/replay)");
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  },
);
