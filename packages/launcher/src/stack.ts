import { freePort } from "./ports.js";
import { spawnService, type ServiceProcess } from "./processes.js";
import { secretsToWithhold, SERVICES, STOP_ORDER, type ServiceName } from "./catalog.js";

export interface StackOptions {
  redisUrl: string;
  /** Replicas per service; a missing or 0 entry does not start it. */
  replicas: Partial<Record<ServiceName, number>>;
  /** Env for every process (prefixes, provider, tracing...). */
  env?: Record<string, string | undefined>;
  /** Env for one service only. */
  serviceEnv?: Partial<Record<ServiceName, Record<string, string | undefined>>>;
  /** Print each output line, prefixed by service and replica. */
  echo?: (service: string, line: string) => void;
  /** Extra node flags for one service, e.g. `["--cpu-prof"]` or `["--inspect"]`. */
  serviceNodeArgs?: Partial<Record<ServiceName, string[]>>;
  /** Run built `dist` entrypoints with node instead of the sources with tsx. */
  useDist?: boolean;
  readyTimeoutMs?: number;
}

export interface Stack {
  apiUrl: string | undefined;
  simulatorUrl: string | undefined;
  collectorUrl: string | undefined;
  processes: ServiceProcess[];
  byService(name: ServiceName): ServiceProcess[];
  /** Start one more replica of a service (same env as the others, plus `extraEnv`). */
  addReplica(name: ServiceName, extraEnv?: Record<string, string>): Promise<ServiceProcess>;
  /** Stop everything: api first (no new work), then workers, then the collector and simulator. */
  stop(signal?: NodeJS.Signals): Promise<void>;
}

/**
 * The whole topology as OS processes: the same wiring `docker compose` gives,
 * for the demo, `pnpm start --scale` and end-to-end tests.
 */
export async function startStack(opts: StackOptions): Promise<Stack> {
  const ports: Partial<Record<ServiceName, number>> = {};
  for (const spec of SERVICES) {
    if ((opts.replicas[spec.name] ?? 0) > 0) {
      ports[spec.name] = Number(opts.serviceEnv?.[spec.name]?.[spec.portVar]) || (await freePort());
    }
  }
  const simulatorUrl = ports["llm-simulator"] ? `http://127.0.0.1:${ports["llm-simulator"]}` : undefined;
  const collectorUrl = ports["trace-collector"] ? `http://127.0.0.1:${ports["trace-collector"]}` : undefined;
  const apiUrl = ports.api ? `http://127.0.0.1:${ports.api}` : undefined;

  const common: Record<string, string | undefined> = {
    REDIS_URL: opts.redisUrl,
    ...(simulatorUrl ? { LLM_BASE_URL: `${simulatorUrl}/v1` } : {}),
    ...opts.env,
  };
  const processes: ServiceProcess[] = [];
  const counters: Partial<Record<ServiceName, number>> = {};

  const launch = async (name: ServiceName, extraEnv: Record<string, string> = {}): Promise<ServiceProcess> => {
    const spec = SERVICES.find((s) => s.name === name)!;
    const index = (counters[name] = (counters[name] ?? 0) + 1);
    const label = `${name}#${index}`;
    // The first replica gets the advertised port; extra replicas (scaled api/collector) their own.
    const port = (index === 1 ? ports[name] : undefined) ?? (await freePort());
    const env: Record<string, string | undefined> = {
      ...common,
      OTEL_SERVICE_NAME: name,
      ...opts.serviceEnv?.[name],
      ...extraEnv,
      [spec.portVar]: String(port),
    };
    // Unset (not merely empty) the provider keys this service does not use, whether they came from our env or the shell's.
    for (const name of secretsToWithhold(spec)) env[name] = undefined;
    const proc = spawnService(label, opts.useDist ? spec.dist : spec.entry, env, {
      node: opts.useDist ?? false,
      ...(opts.serviceNodeArgs?.[name] ? { nodeArgs: opts.serviceNodeArgs[name] } : {}),
      ...(opts.echo ? { echo: (line: string) => opts.echo!(label, line) } : {}),
    });
    proc.port = port;
    processes.push(proc);
    await waitUntilReady(proc, `http://127.0.0.1:${port}${spec.readyPath}`, opts.readyTimeoutMs ?? 30_000);
    return proc;
  };

  try {
    for (const spec of SERVICES) {
      const n = opts.replicas[spec.name] ?? 0;
      await Promise.all(Array.from({ length: n }, () => launch(spec.name)));
    }
  } catch (err) {
    await Promise.all(processes.map((p) => p.stop("SIGKILL")));
    throw err;
  }

  let stopping: Promise<void> | undefined;
  return {
    apiUrl,
    simulatorUrl,
    collectorUrl,
    processes,
    byService: (name) => processes.filter((p) => p.name.startsWith(`${name}#`)),
    addReplica: launch,
    stop: (signal = "SIGTERM") =>
      (stopping ??= (async () => {
        for (const name of STOP_ORDER) {
          await Promise.all(processes.filter((p) => p.name.startsWith(`${name}#`)).map((p) => p.stop(signal)));
        }
      })()),
  };
}

/** Poll the service's readiness URL; fail early, with its output, if it exits. */
async function waitUntilReady(proc: ServiceProcess, url: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let exited = false;
  void proc.exited.then(() => (exited = true));
  while (Date.now() < deadline) {
    if (exited) throw new Error(`${proc.name} exited before it was ready. Output:\n${proc.output().slice(-4000)}`);
    const ok = await fetch(url, { signal: AbortSignal.timeout(1_000) }).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${proc.name} not ready at ${url} within ${timeoutMs} ms. Output:\n${proc.output().slice(-4000)}`);
}
