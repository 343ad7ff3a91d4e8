import { parseArgs } from "node:util";
import { resolveServiceName, SERVICES, serviceSpec, type ServiceName } from "@tracelane/launcher";

/** Ports `pnpm start` uses when they are free: the same ones docker-compose.yml gives. */
export const DEFAULT_PORTS: Partial<Record<ServiceName, number>> = {
  api: 3000,
  "llm-simulator": 4010,
  "trace-collector": 4319,
};

export const MAX_REPLICAS = 32;

export interface StartOptions {
  replicas: Record<ServiceName, number>;
  /** Requested port per HTTP service; 0 means any free port. */
  ports: Partial<Record<ServiceName, number>>;
  /** Services whose port was asked for with --port: taken means fail, not fall back. */
  explicitPorts: ServiceName[];
  /** Run the built bundles (services/<name>/dist, `pnpm build`) with node instead of the sources with tsx. */
  dist: boolean;
  help: boolean;
}

export const START_USAGE = `Usage: pnpm start [--scale <service>=<n>]... [--port <service>=<port>]...

Runs every tracelane service as OS processes (the topology of docker-compose.yml, without Docker).

  --scale <service>=<n>   replicas of a service (default 1; 0 leaves it out). Stage names work:
                          --scale factcheck=3 --scale analysis=2
  --port <service>=<port> port of the api, simulator or collector; 0 picks a free one. A port
                          asked for that is taken stops the start; the defaults (3000, 4010,
                          4319) give way to a free port when taken.
  --dist                  run the bundles of \`pnpm build\` with node (starts faster) instead of tsx
  -h, --help              this text

Environment: REDIS_URL (must answer within 5 s; unset, a private redis-server is started), LLM_BASE_URL / LLM_API_KEY (else the
built-in simulator is started), OTEL_EXPORTER_OTLP_ENDPOINT (e.g. http://localhost:4317 for Jaeger),
and every variable of .env.example.`;

/** `name=value` with a service name (or stage/short name) and a non-negative integer. */
function assignment(flag: string, text: string, max: number): [ServiceName, number] {
  const m = /^([a-z-]+)=(\d+)$/.exec(text.trim());
  if (!m) throw new Error(`${flag} expects <service>=<number>, got "${text}"`);
  const name = resolveServiceName(m[1]!);
  const value = Number(m[2]);
  if (value > max) throw new Error(`${flag} ${text}: at most ${max}`);
  return [name, value];
}

/**
 * Parse `pnpm start` arguments. `externalProvider`: LLM_BASE_URL is set, so the simulator is not
 * started unless asked for with --scale simulator=1.
 */
export function parseStartArgs(argv: string[], opts: { externalProvider: boolean }): StartOptions {
  const { values } = parseArgs({
    args: argv.filter((a) => a !== "--"),
    options: {
      scale: { type: "string", multiple: true, default: [] },
      port: { type: "string", multiple: true, default: [] },
      dist: { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
    strict: true,
    allowPositionals: false,
  });

  const replicas = Object.fromEntries(SERVICES.map((s) => [s.name, 1])) as Record<ServiceName, number>;
  if (opts.externalProvider) replicas["llm-simulator"] = 0;
  for (const text of values.scale ?? []) {
    const [name, n] = assignment("--scale", text, MAX_REPLICAS);
    if (n > 1 && !serviceSpec(name).scalable) throw new Error(`--scale ${text}: ${name} runs as a single process`);
    replicas[name] = n;
  }

  const ports: Partial<Record<ServiceName, number>> = { ...DEFAULT_PORTS };
  const explicitPorts: ServiceName[] = [];
  for (const text of values.port ?? []) {
    const [name, port] = assignment("--port", text, 65_535);
    if (serviceSpec(name).portVar !== "PORT")
      throw new Error(`--port ${text}: ${name} has no fixed port (workers get a free /healthz port)`);
    ports[name] = port;
    explicitPorts.push(name);
  }
  return { replicas, ports, explicitPorts, dist: values.dist ?? false, help: values.help ?? false };
}
