/** Every runnable service: where its entrypoint is and how to tell it is ready. */
export interface ServiceSpec {
  name: ServiceName;
  /** Entrypoint relative to the repo root (TypeScript source, run with tsx). */
  entry: string;
  /** Built entrypoint (`pnpm build`), for running without tsx. */
  dist: string;
  /** HTTP path that answers 200 once the service is ready (polled on its port). */
  readyPath: string;
  /** Env var holding its HTTP port (for workers: the /healthz port). */
  portVar: string;
  scalable: boolean;
}

export type ServiceName =
  | "llm-simulator"
  | "trace-collector"
  | "api"
  | "analysis-worker"
  | "factcheck-worker"
  | "synthesis-worker";

const spec = (name: ServiceName, readyPath: string, portVar: string, scalable: boolean): ServiceSpec => ({
  name,
  entry: `services/${name}/src/index.ts`,
  dist: `services/${name}/dist/index.js`,
  readyPath,
  portVar,
  scalable,
});

/** Start order: providers and the collector first, then the api, then workers. */
export const SERVICES: readonly ServiceSpec[] = [
  spec("llm-simulator", "/healthz", "PORT", false),
  spec("trace-collector", "/readyz", "PORT", true),
  spec("api", "/readyz", "PORT", true),
  spec("analysis-worker", "/healthz", "HEALTH_PORT", true),
  spec("factcheck-worker", "/healthz", "HEALTH_PORT", true),
  spec("synthesis-worker", "/healthz", "HEALTH_PORT", true),
];

export const serviceSpec = (name: ServiceName): ServiceSpec => {
  const s = SERVICES.find((x) => x.name === name);
  if (!s) throw new Error(`unknown service ${name}`);
  return s;
};

/** `--scale factcheck=3` accepts the stage name or the service name. */
export function resolveServiceName(input: string): ServiceName {
  const direct = SERVICES.find((s) => s.name === input);
  if (direct) return direct.name;
  const worker = SERVICES.find((s) => s.name === `${input}-worker`);
  if (worker) return worker.name;
  if (input === "collector") return "trace-collector";
  if (input === "simulator") return "llm-simulator";
  throw new Error(`unknown service "${input}"; known: ${SERVICES.map((s) => s.name).join(", ")}`);
}
