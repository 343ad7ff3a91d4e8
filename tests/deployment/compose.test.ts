import { execFile, spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { jobOptionsFromEnv, STAGES, type Stage } from "@tracelane/queue-contract";
import { DEFAULT_STAGE_MODELS, loadStageConfig, stageEnvNames } from "@tracelane/stage-runner";
import { SERVICES } from "@tracelane/launcher";
import { RESEARCH_PIPELINE } from "@tracelane/pipeline";
import { stageModelEnvShape } from "@tracelane/pricing";
import { REPO_ROOT } from "@tracelane/testkit";
import { parse } from "yaml";
// Services are not libraries, and tracing keeps its env schema internal: their config loaders are
// imported by path, so this test parses compose's environment with the code the containers run.
import { apiKeysFromEnv, checkBinding, loadEnv as loadApiEnv } from "@tracelane/api/testing";
import { loadEnv as loadSimulatorEnv } from "@tracelane/llm-simulator/testing";
import { loadEnv as loadCollectorEnv } from "@tracelane/trace-collector/testing";
import { resolveTracingConfig } from "@tracelane/tracing";
import {
  closureSource,
  documentedNames,
  interpolateWithDefaults,
  loadCompose,
  variablesReadIn,
  type ComposeTracelaneService,
} from "./support/compose-model.js";

const run = promisify(execFile);
const compose = loadCompose();
const byName = new Map(compose.tracelane.map((s) => [s.service, s]));
const stageOf = (service: string): Stage | undefined => STAGES.find((s) => service === `${s}-worker`);
const hasDockerCompose = spawnSync("docker-compose", ["version"], { stdio: "ignore" }).status === 0;

interface PrometheusConfig {
  scrape_configs: Array<{
    job_name: string;
    metrics_path?: string;
    static_configs?: unknown;
    dns_sd_configs?: Array<{ names: string[]; type: string; port: number }>;
  }>;
}

/** Each service's own config loader, fed the environment compose gives its container. */
function loadServiceConfig(svc: ComposeTracelaneService, env: Record<string, string | undefined>): void {
  const stage = stageOf(svc.service);
  if (svc.service === "api") loadApiEnv(env);
  else if (svc.service === "trace-collector") loadCollectorEnv(env);
  else if (svc.service === "llm-simulator") loadSimulatorEnv(env);
  else if (stage) {
    loadStageConfig(stage, env);
    jobOptionsFromEnv(env);
  } else throw new Error(`no config loader for ${svc.service}`);
  if (svc.service !== "llm-simulator") resolveTracingConfig({ serviceName: svc.service }, env);
}

/** The variable names an EnvError (or any config error) names, one per `NAME: ...` line. */
function namesInError(err: unknown): string[] {
  const text = err instanceof Error ? err.message : String(err);
  return [...text.matchAll(/^\s*-\s*([A-Z][A-Z0-9_]*)[:.]/gm)].map((m) => m[1]!);
}

describe("docker-compose.yml", () => {
  it("passes `docker-compose config` and lists the whole topology", async (ctx) => {
    if (!hasDockerCompose) ctx.skip("docker-compose is not installed here (CI installs it: apt-get install docker-compose)");
    // .env.example as the env file: a fresh checkout (everything commented out) must be valid too.
    const base = ["--env-file", ".env.example", "-f", "docker-compose.yml"];
    const resolved = await run("docker-compose", [...base, "config"], { cwd: REPO_ROOT });
    const listed = await run("docker-compose", [...base, "config", "--services"], { cwd: REPO_ROOT });
    expect(listed.stdout.trim().split("\n").sort()).toEqual([
      "analysis-worker",
      "api",
      "factcheck-worker",
      "jaeger",
      "llm-simulator",
      "prometheus",
      "redis",
      "synthesis-worker",
      "trace-collector",
    ]);
    const doc = parse(resolved.stdout) as { services: Record<string, { environment?: Record<string, string> }> };
    expect(doc.services["factcheck-worker"]?.environment?.LLM_BASE_URL).toBe("http://llm-simulator:4010/v1");
  });

  it("runs every service of the launcher's catalog from the one image, by a command whose source entry exists", () => {
    expect(compose.tracelane.map((s) => s.service).sort()).toEqual(SERVICES.map((s) => s.name).sort());
    for (const svc of compose.tracelane) {
      expect(svc.composeName).toBe(svc.service);
      expect(svc.command).toEqual(["node", `services/${svc.service}/dist/index.js`]);
      expect(existsSync(path.join(REPO_ROOT, "services", svc.service, "src/index.ts")), `services/${svc.service}/src/index.ts`).toBe(true);
      const raw = compose.services[svc.composeName]!;
      expect(interpolateWithDefaults(String(raw.image))).toBe("tracelane:local");
      expect(raw.build).toEqual({ context: "." });
    }
  });

  it("leaves scalable services free to scale: no container_name anywhere, host ports only on the api and single-instance services", () => {
    for (const [name, svc] of Object.entries(compose.services)) {
      expect(svc.container_name, name).toBeUndefined();
      const spec = SERVICES.find((s) => s.name === name);
      if (spec?.scalable && name !== "api") expect(svc.ports, `${name} must not publish host ports`).toBeUndefined();
    }
    expect(compose.services.api!.ports).toEqual(["${API_PORT:-3000}:3000"]);
  });

  it("gives every service a healthcheck, a restart policy and a memory limit, and starts it after its dependencies are healthy", () => {
    for (const [name, svc] of Object.entries(compose.services)) {
      expect((svc.healthcheck as { test?: unknown } | undefined)?.test, `${name} healthcheck`).toBeDefined();
      expect(svc.restart, name).toBe("unless-stopped");
      expect(svc.mem_limit, name).toMatch(/^\d+[mg]$/);
      for (const [dep, cond] of Object.entries((svc.depends_on ?? {}) as Record<string, { condition: string }>)) {
        expect(cond.condition, `${name} -> ${dep}`).toBe("service_healthy");
        expect(compose.services[dep], `${name} depends on unknown ${dep}`).toBeDefined();
      }
    }
    for (const stage of STAGES) {
      const svc = compose.services[`${stage}-worker`]!;
      expect(Object.keys(svc.depends_on as object).sort()).toEqual(["jaeger", "llm-simulator", "redis"]);
      expect(byName.get(`${stage}-worker`)!.environment.HEALTH_PORT).toMatch(/^[1-9]\d*$/);
    }
  });

  it("has Prometheus scrape /metrics of every service that serves it (each replica, by DNS), at the port compose gives it", () => {
    const prom = compose.services.prometheus!;
    expect(prom.image).toMatch(/^prom\/prometheus:v3\.\d+\.\d+$/);
    expect(prom.volumes).toContain("./deploy/prometheus.yml:/etc/prometheus/prometheus.yml:ro");
    expect(prom.command).toContain("--config.file=/etc/prometheus/prometheus.yml");
    const config = parse(readFileSync(path.join(REPO_ROOT, "deploy/prometheus.yml"), "utf8")) as PrometheusConfig;
    const jobs = config.scrape_configs.map((job) => {
      expect(job.metrics_path ?? "/metrics", job.job_name).toBe("/metrics");
      expect(job.static_configs, `${job.job_name}: a static target would reach one replica per scrape`).toBeUndefined();
      expect(job.dns_sd_configs, job.job_name).toHaveLength(1);
      const [sd] = job.dns_sd_configs!;
      expect(sd!.type).toBe("A");
      return { job: job.job_name, names: sd!.names, port: sd!.port };
    });
    // Every service of the launcher's catalog but the simulator has /metrics: the api and collector on PORT, workers on HEALTH_PORT.
    const expected = SERVICES.filter((s) => s.name !== "llm-simulator").map((s) => {
      const env = byName.get(s.name)!.environment;
      return { job: s.name, names: [s.name], port: Number(env[s.portVar]) };
    });
    expect(jobs.sort((a, b) => a.job.localeCompare(b.job))).toEqual(expected.sort((a, b) => a.job.localeCompare(b.job)));
  });

  it("wires Redis, Jaeger, the simulator and the Jaeger UI link the way the services expect", () => {
    for (const svc of compose.tracelane) {
      expect(svc.environment.OTEL_SERVICE_NAME, svc.service).toBe(svc.service);
      expect(svc.environment.OTEL_EXPORTER_OTLP_ENDPOINT, svc.service).toBe("http://jaeger:4317");
      if (svc.service !== "llm-simulator") expect(svc.environment.REDIS_URL, svc.service).toBe("redis://redis:6379");
    }
    for (const stage of STAGES) {
      const env = byName.get(`${stage}-worker`)!.environment;
      expect(env.LLM_BASE_URL).toBe("http://llm-simulator:4010/v1");
      expect(env.LLM_API_KEY).toBe(byName.get("llm-simulator")!.environment.LLM_SIM_API_KEY);
      expect(env[`${stage.toUpperCase()}_MODEL`]).toBe(DEFAULT_STAGE_MODELS[stage]);
    }
    expect(compose.text).toContain("LLM_BASE_URL: ${LLM_BASE_URL:-http://llm-simulator:4010/v1}");
    expect(byName.get("api")!.environment.JAEGER_UI_URL).toBe("http://localhost:16686");
    expect(compose.services.jaeger!.image).toMatch(/^jaegertracing\/jaeger:2\.\d+\.\d+$/);
    expect(compose.services.redis!.command).toEqual(expect.arrayContaining(["--appendonly", "yes", "--maxmemory-policy", "noeviction"]));
  });

  it("sets only variables the service's own code (or a workspace package it runs with) reads", () => {
    const unread: string[] = [];
    for (const svc of compose.tracelane) {
      const source = closureSource(svc.service);
      const stage = stageOf(svc.service);
      // The api reads every stage's model variables, their names made from the pipeline definition.
      const known = new Set(
        stage ? stageEnvNames(stage) : svc.service === "api" ? Object.keys(stageModelEnvShape(RESEARCH_PIPELINE.stages)) : [],
      );
      for (const name of Object.keys(svc.environment)) {
        if (!known.has(name) && !new RegExp(`\\b${name}\\b`).test(source)) unread.push(`${svc.service}: ${name}`);
      }
    }
    expect(unread).toEqual([]);
  });

  it("gives each service an environment its config accepts, including every variable that has no default", () => {
    for (const svc of compose.tracelane) {
      // What the code cannot start without: the names its config rejects in an empty environment.
      let required: string[] = [];
      try {
        loadServiceConfig(svc, {});
      } catch (err) {
        required = namesInError(err);
      }
      for (const name of required) expect(svc.environment[name], `${svc.service} requires ${name}`).toBeTruthy();
      expect(() => loadServiceConfig(svc, svc.environment), svc.service).not.toThrow();
    }
  });

  it("lets the api listen on every interface: open on purpose with no API_KEYS, keyed with them, refused if told not to run open", () => {
    const environment = byName.get("api")!.environment;
    const binds = (over: Record<string, string>) => {
      const env = loadApiEnv({ ...environment, ...over });
      checkBinding({ host: env.HOST, keys: apiKeysFromEnv(env), allowUnauthenticated: env.ALLOW_UNAUTHENTICATED });
      return env.HOST;
    };
    expect(binds({})).toBe("0.0.0.0");
    expect(binds({ API_KEYS: `${"k".repeat(32)} ops admin`, ALLOW_UNAUTHENTICATED: "false" })).toBe("0.0.0.0");
    expect(() => binds({ ALLOW_UNAUTHENTICATED: "false" })).toThrow(/HOST: 0\.0\.0\.0 is reachable from other machines/);
  });
});

describe(".env.example", () => {
  const documented = documentedNames();

  it("documents every variable docker-compose.yml sets or interpolates", () => {
    const names = new Set([...compose.interpolated, ...compose.tracelane.flatMap((s) => Object.keys(s.environment))]);
    expect([...names].filter((n) => !documented.has(n)).sort()).toEqual([]);
  });

  it("documents every variable the services read", () => {
    const read = new Set<string>();
    for (const svc of compose.tracelane) {
      for (const name of variablesReadIn(svc.service)) read.add(name);
      const stage = stageOf(svc.service);
      for (const name of stage ? stageEnvNames(stage) : []) read.add(name);
    }
    // A sanity check of the scan itself, so an empty result cannot pass silently.
    expect(read).toContain("MAX_QUERY_CHARS");
    expect(read).toContain("COLLECTOR_BATCH_SIZE");
    expect(read).toContain("LLM_SIM_FAULT_RATE");
    expect(read).toContain("OTEL_BSP_MAX_QUEUE_SIZE");
    expect([...read].filter((n) => !documented.has(n)).sort(), "add them to .env.example").toEqual([]);
  });
});
