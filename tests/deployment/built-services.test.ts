import { execFile, spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { isolatedRun, ONE_OF_EACH, SERVICES } from "@tracelane/launcher";
import { REPO_ROOT, startStack, waitFor, type Stack } from "@tracelane/testkit";
import { apiClient } from "../support/api-client.js";

const run = promisify(execFile);
const TSX = path.join(REPO_ROOT, "node_modules/.bin/tsx");

/** Keys of one test run; every process of it gets the same ones. */
function isolatedEnv(): Record<string, string> {
  return { ...isolatedRun("deploy").env, LOG_LEVEL: "warn" };
}

let buildMs = 0;

beforeAll(async () => {
  // `pnpm build`, the way a user (or the Dockerfile) runs it.
  const started = Date.now();
  await run(TSX, ["scripts/build.ts"], { cwd: REPO_ROOT });
  buildMs = Date.now() - started;
}, 120_000);

describe("pnpm build", () => {
  it("writes a self-contained ESM bundle per service, importing only node builtins and linked third-party packages", () => {
    console.log(`pnpm build took ${buildMs} ms`);
    for (const spec of SERVICES) {
      const dist = path.join(REPO_ROOT, path.dirname(spec.dist));
      const code = readFileSync(path.join(REPO_ROOT, spec.dist), "utf8");
      expect(JSON.parse(readFileSync(path.join(dist, "package.json"), "utf8")).type, spec.name).toBe("module");
      expect(existsSync(path.join(REPO_ROOT, `${spec.dist}.map`)), `${spec.name} sourcemap`).toBe(true);
      // Workspace packages are inlined: no import of @tracelane/* and no TypeScript left.
      expect(code, spec.name).not.toMatch(/from\s+["']@tracelane\//);
      expect(code, spec.name).not.toMatch(/\.ts["']/);
      const imported = [...code.matchAll(/^import\s[^;]*?from\s+["']([^"']+)["']/gm)].map((m) => m[1]!);
      expect(imported, spec.name).toContain("zod");
      for (const specifier of imported.filter((s) => !s.startsWith("node:"))) {
        const name = specifier.startsWith("@") ? specifier.split("/").slice(0, 2).join("/") : specifier.split("/")[0]!;
        expect(existsSync(path.join(dist, "node_modules", name, "package.json")), `${spec.name} imports ${specifier}`).toBe(true);
      }
    }
  });
});

describe("services run from their bundles with plain node", () => {
  let stack: Stack | undefined;

  afterAll(async () => {
    await stack?.stop();
  });

  it("serve a research end to end, and the api links its trace to the Jaeger UI", async () => {
    stack = await startStack({
      redisUrl: inject("redisUrl"),
      useDist: true,
      replicas: ONE_OF_EACH,
      env: isolatedEnv(),
      serviceEnv: { api: { JAEGER_UI_URL: "http://localhost:16686" } },
    });
    // node, not tsx, runs each service.
    for (const p of stack.processes) expect(p.child.spawnargs[0], p.name).toBe(process.execPath);
    expect(stack.processes.map((p) => p.child.spawnargs[1])).toEqual(SERVICES.map((s) => path.join(REPO_ROOT, s.dist)));

    const api = apiClient(stack.apiUrl!);
    const { status, body } = await api.submit({ query: "What made offshore wind cheaper after 2015?" });
    expect(status).toBe(202);
    const view = await api.waitForFinal(body.id);
    expect(view.status).toBe("completed");
    expect(view.result?.finalReport.length).toBeGreaterThan(50);

    // The collector (also a bundle) assembled the trace; the api links it to Jaeger.
    const trace = await waitFor(
      async () => {
        const res = await fetch(`${stack!.apiUrl}/v1/traces/${body.traceId}`);
        if (!res.ok) return undefined;
        const json = (await res.json()) as { summary: { services: string[] }; links: { jaeger?: string } };
        return json.summary.services.includes("synthesis-worker") ? json : undefined;
      },
      { timeoutMs: 15_000, intervalMs: 200, what: "the assembled trace" },
    );
    expect(trace.links.jaeger).toBe(`http://localhost:16686/trace/${body.traceId}`);

    // The bundled api serves the web console that pnpm build copied beside it: a deep link and its script.
    const page = await fetch(`${stack.apiUrl}/ui/traces/${body.traceId}`);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('src="/ui/assets/app.js"');
    expect((await fetch(`${stack.apiUrl}/ui/assets/app.js`)).status).toBe(200);
  }, 90_000);
});

describe("pnpm start", () => {
  it("runs the topology with a scaled stage, prefixes log lines by replica, and stops everything in order with exit 0 on SIGTERM", async () => {
    const env: Record<string, string | undefined> = {
      ...process.env,
      ...isolatedEnv(),
      LOG_LEVEL: "info",
      REDIS_URL: inject("redisUrl"),
      NO_COLOR: "1",
    };
    delete env.LLM_BASE_URL;
    const child = spawn(
      process.execPath,
      [
        "--import",
        "tsx",
        "scripts/start.ts",
        "--dist",
        "--scale",
        "factcheck=2",
        "--port",
        "api=0",
        "--port",
        "simulator=0",
        "--port",
        "collector=0",
      ],
      { cwd: REPO_ROOT, env, stdio: ["ignore", "pipe", "pipe"] },
    );
    let out = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr.on("data", (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
    try {
      const apiUrl = await waitFor(() => /^api: (http:\/\/\S+)$/m.exec(out)?.[1], {
        timeoutMs: 60_000,
        what: `pnpm start to print the api URL. Output:\n${out}`,
      });
      expect(out).toContain(`using Redis at ${inject("redisUrl")}`);
      expect(out).toMatch(/^factcheck-worker#2 \| /m);
      expect(out).toMatch(/factcheck-worker x2/);

      const api = apiClient(apiUrl);
      const { body } = await api.submit({ query: "Why do heat pumps work in cold climates?" });
      expect((await api.waitForFinal(body.id)).status).toBe("completed");

      child.kill("SIGTERM");
      expect(await exited).toBe(0);
      const stopLines = out
        .split("\n")
        .filter((l) => /"msg":"shutting down"|shutting down/.test(l))
        .map((l) => l.split(" |")[0]!.trim());
      // The api stops first (no new work), the simulator last.
      expect(stopLines[0]).toBe("api#1");
      expect(stopLines.at(-1)).toBe("llm-simulator#1");
      expect(out).toContain("stopped everything pnpm start started");
    } finally {
      if (child.exitCode === null) child.kill("SIGKILL");
    }
  }, 120_000);
});
