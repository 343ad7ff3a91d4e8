/**
 * `pnpm start [--scale factcheck=3] [--port api=3100] [--dist]`: every service as OS processes, wired
 * like docker-compose.yml (one Redis, the simulator unless LLM_BASE_URL is set, the
 * trace-collector, the api, each stage worker with its own replica count). Log lines are
 * prefixed by `service#replica`; SIGTERM stops the api first, then the workers, then the
 * collector and the simulator, and exits 0. Ctrl-C does the same: services run in their own
 * process groups, so the terminal's SIGINT reaches only this script, which stops them in order.
 * pnpm does not pass a SIGTERM on (it kills the `sh -c` it runs this under), so this script also
 * stops in order when its parent goes away.
 */
import { existsSync } from "node:fs";
import path from "node:path";
import { buildConsole } from "@tracelane/console/build";
import { REPO_ROOT, SERVICES, startStack, WORKER_SERVICES, type ServiceName, type Stack } from "@tracelane/launcher";
import { watchParent } from "@tracelane/runtime";
import { endpointAnswers, otlpEndpoint } from "./lib/jaeger-status.js";
import { redisForRun } from "./lib/redis-for-run.js";
import { parseStartArgs, START_USAGE, type StartOptions } from "./lib/start-options.js";
import { resolvePorts } from "./lib/start-ports.js";

const log = (msg: string) => console.log(`• ${msg}`);

const COLORS = [36, 33, 35, 32, 34, 91, 96, 93, 95, 92];

/** `service#replica | line`, one colour per service when the output is a terminal. */
function prefixer(opts: StartOptions): (label: string, line: string) => void {
  const labels = Object.entries(opts.replicas).flatMap(([name, n]) => Array.from({ length: n }, (_, i) => `${name}#${i + 1}`));
  const width = Math.max(...labels.map((l) => l.length), 10);
  const color = process.stdout.isTTY && !process.env.NO_COLOR;
  const services = Object.keys(opts.replicas);
  return (label, line) => {
    const name = label.replace(/#\d+$/, "");
    const prefix = label.padEnd(width);
    const code = COLORS[services.indexOf(name) % COLORS.length];
    process.stdout.write(color ? `\x1b[${code}m${prefix} |\x1b[0m ${line}\n` : `${prefix} | ${line}\n`);
  };
}

async function printSummary(stack: Stack, redisUrl: string): Promise<void> {
  const rows: string[] = [];
  const count = (name: ServiceName) => stack.byService(name).length;
  if (stack.apiUrl) rows.push(`api              ${stack.apiUrl}   POST /v1/research, GET /v1/research/:id, GET /v1/traces/:traceId`);
  if (stack.apiUrl) rows.push(`console          ${stack.apiUrl}/ui/   researches, trace waterfalls, costs, anomalies`);
  if (stack.apiUrl) rows.push(`queues           ${stack.apiUrl}/admin/queues   Bull Board: jobs per stage queue, retry, remove`);
  if (count("api") > 1)
    rows.push(
      `                 + ${count("api") - 1} more api replica(s) on ${stack
        .byService("api")
        .slice(1)
        .map((p) => p.port)
        .join(", ")}`,
    );
  rows.push(
    `model provider   ${stack.simulatorUrl ? `${stack.simulatorUrl}/v1 (llm-simulator; stats at /_sim/stats)` : process.env.LLM_BASE_URL}`,
  );
  if (stack.collectorUrl) rows.push(`trace-collector  ${stack.collectorUrl}/stats`);
  rows.push(`workers          ${WORKER_SERVICES.map((n) => `${n} x${count(n)}`).join(", ")}`);
  for (const name of WORKER_SERVICES) {
    for (const p of stack.byService(name)) rows.push(`  ${p.name.padEnd(22)} http://127.0.0.1:${p.port}/healthz`);
  }
  rows.push(`redis            ${redisUrl}`);
  const otlp = otlpEndpoint();
  const jaeger = !otlp
    ? "off (OTEL_EXPORTER_OTLP_ENDPOINT=http://localhost:4317 with `docker compose up -d jaeger`)"
    : (await endpointAnswers(otlp))
      ? `spans to ${otlp}; UI ${process.env.JAEGER_UI_URL ?? "http://localhost:16686"}`
      : `nothing answers at ${otlp}: no span reaches Jaeger and its links will not work (start it: docker compose up -d jaeger)`;
  rows.push(`jaeger           ${jaeger}`);
  console.log(`\ntracelane is up\n${rows.map((r) => `  ${r}`).join("\n")}\n`);
  // API_KEYS / API_KEYS_FILE set: the api wants a key on every call (the CLI reads TRACELANE_API_KEY).
  const keyed = Boolean(process.env.API_KEYS?.trim() || process.env.API_KEYS_FILE?.trim());
  if (stack.apiUrl) {
    if (keyed) console.log("  the api has API keys: set TRACELANE_API_KEY to one of them for the CLI; the console at /ui asks for it");
    console.log(
      `  try: curl -s ${stack.apiUrl}/v1/research -H 'content-type: application/json'${keyed ? ` -H "Authorization: Bearer $TRACELANE_API_KEY"` : ""} -d '{"query":"Why did solar panel prices fall?"}'`,
    );
    const cliUrl = stack.apiUrl === "http://127.0.0.1:3000" ? "" : `TRACELANE_URL=${stack.apiUrl} `;
    console.log(`   or: ${cliUrl}pnpm tracelane research "Why did solar panel prices fall?" --wait\n`);
  }
  console.log(`api: ${stack.apiUrl ?? "(not started)"}`);
  console.log("Ctrl-C (or SIGTERM to pnpm) stops everything.\n");
}

async function main(): Promise<number> {
  const externalProvider = Boolean(process.env.LLM_BASE_URL);
  let opts: StartOptions;
  try {
    opts = parseStartArgs(process.argv.slice(2), { externalProvider });
  } catch (err) {
    console.error(`${err instanceof Error ? err.message : String(err)}\n\n${START_USAGE}`);
    return 2;
  }
  if (opts.help) {
    console.log(START_USAGE);
    return 0;
  }
  const unbuilt = SERVICES.filter((s) => opts.dist && opts.replicas[s.name] > 0 && !existsSync(path.join(REPO_ROOT, s.dist)));
  if (unbuilt.length > 0) {
    console.error(`--dist: ${unbuilt.map((s) => s.dist).join(", ")} missing; run \`pnpm build\` first`);
    return 2;
  }

  // A signal during startup is honoured once everything that was starting is up.
  /** Why we stop: a signal's name, or that the parent went away. */
  let signalled: string | undefined;
  let stopping = false;
  let onSignal: (why: string) => void = (signal) => {
    signalled = signal;
  };
  // SIGHUP: the terminal closed (its default would kill us before the services are stopped).
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) process.on(signal, () => onSignal(signal));
  // pnpm killed: its `sh -c` dies with it and this process is re-parented. Stop as for a signal.
  // (Not a second signal when already stopping: a shell between may exit on the same Ctrl-C.)
  watchParent(() => {
    if (!stopping) onSignal("the parent process (pnpm) exited");
  });
  // Whoever reads our output may be gone too; a write to a closed pipe must not kill the launcher
  // before it has stopped the services.
  for (const stream of [process.stdout, process.stderr]) stream.on("error", () => undefined);

  // Before Redis: a --port that is taken fails the start at once, naming it.
  const ports = await resolvePorts(opts.ports, { explicit: opts.explicitPorts, started: (name) => opts.replicas[name] > 0, log });

  // The api serves the web console from packages/console/dist (rebuilt when its sources changed).
  await buildConsole({ ifStale: true });
  const redis = await redisForRun(log);
  const running = await startStack({
    redisUrl: redis.url,
    replicas: opts.replicas,
    env: {
      NODE_ENV: process.env.NODE_ENV ?? "development",
      // The services write into pipes; a person at a terminal still gets readable lines.
      LOG_FORMAT: process.env.LOG_FORMAT ?? (process.stdout.isTTY ? "pretty" : "json"),
      // The simulator answers with a realistic delay, as under docker compose.
      ...(externalProvider
        ? {}
        : { LLM_SIM_LATENCY_MS: process.env.LLM_SIM_LATENCY_MS ?? "400", LLM_SIM_JITTER_MS: process.env.LLM_SIM_JITTER_MS ?? "300" }),
    },
    serviceEnv: Object.fromEntries(Object.entries(ports).map(([name, port]) => [name, { PORT: String(port) }])),
    echo: prefixer(opts),
    useDist: opts.dist,
    readyTimeoutMs: 60_000,
  }).catch(async (err: unknown) => {
    // startStack already stopped whatever it had started.
    await redis.ephemeral?.destroy();
    throw err;
  });

  const stopped = new Promise<number>((resolve) => {
    const finish = (code: number) =>
      void Promise.resolve(redis.ephemeral?.destroy()).then(
        () => resolve(code),
        () => resolve(1),
      );
    onSignal = (signal) => {
      // The terminal closing while we stop (after a Ctrl-C) is not a request to hurry.
      if (stopping && signal === "SIGHUP") return;
      if (stopping) {
        log(`${signal} again: killing what is left`);
        for (const p of running.processes) p.child.kill("SIGKILL");
        finish(1);
        return;
      }
      stopping = true;
      log(`${signal}: stopping the api, then the workers, then the collector and the simulator`);
      running.stop().then(
        () => {
          log("stopped everything pnpm start started");
          finish(0);
        },
        (err: unknown) => {
          console.error(err);
          finish(1);
        },
      );
    };
    // A process that dies on its own is reported; the others keep running, as under compose.
    for (const p of running.processes) {
      void p.exited.then((code) => {
        if (stopping) return;
        log(`${p.name} exited (${code ?? p.child.signalCode}); the other services keep running`);
        if (running.processes.every((q) => q.child.exitCode !== null || q.child.signalCode !== null)) {
          log("every service has exited");
          stopping = true;
          finish(1);
        }
      });
    }
  });

  await printSummary(running, redis.url);
  if (signalled) onSignal(signalled);
  return stopped;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  },
);
