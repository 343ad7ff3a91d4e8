import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { SERVICES, STOP_ORDER } from "@tracelane/launcher";
import { RESEARCH_PIPELINE } from "@tracelane/pipeline";
import { stageEnvNames } from "@tracelane/stage-runner";
import { REPO_ROOT } from "@tracelane/testkit";
import { loadCompose } from "./support/compose-model.js";

/** `# NAME=value` / `NAME=value` lines of .env.example, by name. */
function envExampleRows(): Map<string, string> {
  const rows = new Map<string, string>();
  for (const line of readFileSync(path.join(REPO_ROOT, ".env.example"), "utf8").split("\n")) {
    const m = /^#?\s*([A-Z][A-Z0-9_]*)=(.*)$/.exec(line);
    if (m) rows.set(m[1]!, m[2]!.trim());
  }
  return rows;
}

// Adding a stage is its worker folder, one line in @tracelane/pipeline and its compose service:
// these checks name whichever of the three (or the docs) is missing.
describe("the pipeline definition and the repository agree", () => {
  const compose = loadCompose();

  it.each(RESEARCH_PIPELINE.stages.map((s) => [s.stage, s] as const))(
    "stage %s has its worker folder with its prompt",
    async (_name, stage) => {
      expect(existsSync(path.join(REPO_ROOT, stage.promptModule)), stage.promptModule).toBe(true);
      const text = readFileSync(path.join(REPO_ROOT, stage.promptModule), "utf8");
      expect(text, `${stage.promptModule} defines the prompt of stage "${stage.stage}"`).toMatch(new RegExp(`stage:\\s*"${stage.stage}"`));
      expect(existsSync(path.join(REPO_ROOT, "services", stage.service, "src/index.ts"))).toBe(true);
    },
  );

  it.each(RESEARCH_PIPELINE.stages.map((s) => [s.stage, s] as const))(
    "stage %s has a .env.example row for each of its variables, with its default model",
    (_name, stage) => {
      const rows = envExampleRows();
      const own = stageEnvNames(stage.stage).filter((n) => n.startsWith(`${stage.envPrefix}_`));
      expect(own).toEqual([
        `${stage.envPrefix}_MODEL`,
        `${stage.envPrefix}_FALLBACK_MODEL`,
        `${stage.envPrefix}_LLM_BASE_URL`,
        `${stage.envPrefix}_LLM_API_KEY`,
        `${stage.envPrefix}_PROVIDER`,
        `${stage.envPrefix}_ALLOWED_MODELS`,
        `${stage.envPrefix}_FAIL_ON_CLAIM_ERROR`,
      ]);
      for (const name of own) expect(rows.has(name), `.env.example lacks "# ${name}="`).toBe(true);
      expect(rows.get(`${stage.envPrefix}_MODEL`)).toBe(stage.defaultModel);
    },
  );

  it.each(RESEARCH_PIPELINE.stages.map((s) => [s.stage, s] as const))(
    "stage %s has its compose service running its worker with its default model",
    (_name, stage) => {
      const svc = compose.tracelane.find((s) => s.service === stage.service);
      expect(svc, `docker-compose.yml has no service running services/${stage.service}`).toBeDefined();
      expect(svc!.environment[`${stage.envPrefix}_MODEL`]).toBe(stage.defaultModel);
      expect(svc!.environment.OTEL_SERVICE_NAME).toBe(stage.service);
    },
  );

  it("gives the launcher one worker per stage, started after the api and stopped in pipeline order after it", () => {
    const workers = SERVICES.filter((s) => s.stage !== undefined);
    expect(workers.map((s) => [s.name, s.stage])).toEqual(RESEARCH_PIPELINE.stages.map((s) => [s.service, s.stage]));
    expect(SERVICES.map((s) => s.name).slice(0, 3)).toEqual(["llm-simulator", "trace-collector", "api"]);
    expect(STOP_ORDER).toEqual(["api", ...RESEARCH_PIPELINE.stages.map((s) => s.service), "trace-collector", "llm-simulator"]);
  });
});
