import { RESEARCH_PIPELINE, type Pipeline, type WorkerService } from "@tracelane/pipeline";

/** Every runnable service: where its entrypoint is and how to tell it is ready. */
export interface ServiceSpec<N extends string = ServiceName> {
  name: N;
  /** Entrypoint relative to the repo root (TypeScript source, run with tsx). */
  entry: string;
  /** Built entrypoint (`pnpm build`), for running without tsx. */
  dist: string;
  /** HTTP path that answers 200 once the service is ready (polled on its port). */
  readyPath: string;
  /** Env var holding its HTTP port (for workers: the /healthz port). */
  portVar: string;
  scalable: boolean;
  /** The pipeline stage a worker service runs. */
  stage?: string;
}

/** The services every pipeline runs besides its stage workers, in start order. */
export type CoreService = "llm-simulator" | "trace-collector" | "api";
/** A worker service is one line of the pipeline definition. */
export type ServiceName = CoreService | WorkerService;

const spec = <N extends string>(name: N, readyPath: string, portVar: string, scalable: boolean, stage?: string): ServiceSpec<N> => ({
  name,
  entry: `services/${name}/src/index.ts`,
  dist: `services/${name}/dist/index.js`,
  readyPath,
  portVar,
  scalable,
  ...(stage ? { stage } : {}),
});

/**
 * Start order: providers and the collector first, then the api, then one worker per stage of the
 * pipeline, in its order.
 */
export function serviceCatalog(pipeline: Pipeline<string, string> = RESEARCH_PIPELINE): readonly ServiceSpec<string>[] {
  return [
    spec("llm-simulator", "/healthz", "PORT", false),
    spec("trace-collector", "/readyz", "PORT", true),
    spec("api", "/readyz", "PORT", true),
    ...pipeline.stages.map((s) => spec(s.service, "/healthz", "HEALTH_PORT", true, s.stage)),
  ];
}

/**
 * Stop order: the api first (no new researches), then the workers in pipeline order (each
 * finishes its in-flight jobs), then the collector (it has the last spans) and the simulator.
 */
export function stopOrder(pipeline: Pipeline<string, string> = RESEARCH_PIPELINE): readonly string[] {
  return ["api", ...pipeline.stages.map((s) => s.service), "trace-collector", "llm-simulator"];
}

export const SERVICES = serviceCatalog() as readonly ServiceSpec[];
export const STOP_ORDER = stopOrder() as readonly ServiceName[];
/** The stage workers of the shipped pipeline. */
export const WORKER_SERVICES = SERVICES.filter((s) => s.stage !== undefined).map((s) => s.name as WorkerService);

/**
 * Provider keys: the shared `LLM_API_KEY` and each stage's `<STAGE>_LLM_API_KEY`, and the simulator's
 * `LLM_SIM_API_KEY`. A service is given only the ones it uses (see secretsToWithhold).
 */
const stageKeyVar = (stage: string) =>
  `${RESEARCH_PIPELINE.stages.find((s) => s.stage === stage)?.envPrefix ?? stage.toUpperCase()}_LLM_API_KEY`;
const STAGE_KEY_VARS = RESEARCH_PIPELINE.stages.map((s) => stageKeyVar(s.stage));
/** Tracelane's own API keys: the api and the collector's OTLP endpoint check them; nobody else needs them. */
const API_KEY_VARS = ["API_KEYS", "API_KEYS_FILE"];
const SECRET_VARS = ["LLM_API_KEY", "OPENAI_API_KEY", "LLM_SIM_API_KEY", ...STAGE_KEY_VARS, ...API_KEY_VARS];

/**
 * The secret variables `spec` must not receive: a stage worker keeps `LLM_API_KEY` and its own stage's key,
 * the simulator keeps `LLM_SIM_API_KEY`, and the api and the collector, which never call a model, keep only
 * `API_KEYS` / `API_KEYS_FILE` (which no worker or simulator gets).
 */
export function secretsToWithhold(spec: ServiceSpec<string>): string[] {
  const keep = spec.stage
    ? ["LLM_API_KEY", stageKeyVar(spec.stage)]
    : spec.name === "llm-simulator"
      ? ["LLM_SIM_API_KEY"]
      : spec.name === "api" || spec.name === "trace-collector"
        ? API_KEY_VARS
        : [];
  return SECRET_VARS.filter((v) => !keep.includes(v));
}

export const serviceSpec = (name: ServiceName): ServiceSpec => {
  const s = SERVICES.find((x) => x.name === name);
  if (!s) throw new Error(`unknown service ${name}`);
  return s;
};

/** `--scale factcheck=3` accepts the stage name or the service name. */
export function resolveServiceName(input: string): ServiceName {
  const direct = SERVICES.find((s) => s.name === input);
  if (direct) return direct.name;
  const worker = SERVICES.find((s) => s.stage === input);
  if (worker) return worker.name;
  if (input === "collector") return "trace-collector";
  if (input === "simulator") return "llm-simulator";
  throw new Error(`unknown service "${input}"; known: ${SERVICES.map((s) => s.name).join(", ")}`);
}
