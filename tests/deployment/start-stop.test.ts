import net from "node:net";
import { describe, expect, inject, it } from "vitest";
import { freePort, SERVICES, STOP_ORDER } from "@tracelane/launcher";
import { commandLine, descendants, envWithout, pnpmPath, spawnCollecting, waitUntilGone } from "./support/processes.js";

// pnpm start boots six services with tsx; on a loaded 2-core machine that takes a while.
const UP_MS = 150_000;
/** Every process of the stack must be gone this soon after the signal. */
const GONE_MS = 30_000;
const ANY_PORTS = ["--port", "api=0", "--port", "simulator=0", "--port", "collector=0"];
// The stack under test picks its own Redis, provider and tracing: nothing from the test run leaks in.
const cleanEnv = () => envWithout("REDIS_URL", "LLM_BASE_URL", "OTEL_EXPORTER_OTLP_ENDPOINT", "TRACELANE_EXIT_WITH_PARENT", "LOG_LEVEL");

/** Whatever a failed test left running: SIGKILL it (pids that are gone are skipped). */
function killAll(pids: number[]): void {
  for (const pid of pids) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // already gone
    }
  }
}

const firstLineOf = (output: string, service: string, pattern: RegExp) =>
  output.split("\n").findIndex((line) => line.startsWith(`${service}#1 `) && pattern.test(line));

describe("pnpm start", () => {
  it(
    "stops the whole stack in order, private redis-server included, when pnpm gets SIGTERM (pnpm does not pass it on)",
    async () => {
      let tree: number[] = [];
      const pnpm = spawnCollecting(process.execPath, [pnpmPath(), "start", ...ANY_PORTS], cleanEnv());
      try {
        await pnpm.waitFor(/^Ctrl-C .* stops everything/m, UP_MS);
        tree = descendants(pnpm.child.pid!);
        const commands = tree.map(commandLine);
        for (const service of SERVICES)
          expect(
            commands.some((c) => c.includes(`services/${service.name}/src/index.ts`)),
            service.name,
          ).toBe(true);
        expect(commands.some((c) => c.startsWith("redis-server"))).toBe(true);

        // A person watching sees one line per completed job: stage, replica, research, latency, cost.
        const api = /^api: (http:\/\/\S+)$/m.exec(pnpm.output())![1]!;
        const res = await fetch(`${api}/v1/research`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ query: "Why did solar panel prices fall?" }),
        });
        const { id } = (await res.json()) as { id: string };
        await pnpm.waitFor(/"msg":"synthesis job completed: /, 60_000);
        const completed = pnpm
          .output()
          .split("\n")
          .filter((line) => line.includes(" job completed"))
          .map((line) => JSON.parse(line.slice(line.indexOf("| ") + 2)) as Record<string, unknown>);
        expect(completed.map((l) => l.stage)).toEqual(["analysis", "factcheck", "synthesis"]);
        for (const line of completed) {
          expect(line).toMatchObject({ level: 30, researchId: id, replica: expect.stringMatching(/-\d+$/) });
          expect(line.latencyMs).toBeGreaterThan(0);
          expect(line.costUsd).toBeGreaterThan(0);
        }
        // The factcheck fans out: one line per claim job (all done before the fan-in), then the fan-in's summary.
        const claims = pnpm
          .output()
          .split("\n")
          .filter((line) => /"msg":"factcheck claim \d+ checked: /.test(line))
          .map((line) => JSON.parse(line.slice(line.indexOf("| ") + 2)) as Record<string, unknown>);
        expect(claims.map((l) => l.claim).sort()).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
        for (const line of claims) {
          expect(line).toMatchObject({ level: 30, stage: "factcheck", researchId: id, replica: expect.stringMatching(/-\d+$/) });
          expect(["supported", "refuted", "unverifiable"]).toContain(line.verdict);
          expect(line.modelCalls).toBeGreaterThanOrEqual(2); // the search_evidence turn, then the verdict
          expect(line.costUsd).toBeGreaterThan(0);
        }
        expect(completed[1]!.msg).toMatch(/^factcheck job completed: 8 claims \(/);

        process.kill(pnpm.child.pid!, "SIGTERM");
        expect(await waitUntilGone(tree, GONE_MS)).toEqual([]);

        const out = pnpm.output();
        expect(out).toMatch(/the parent process \(pnpm\) exited: stopping the api, then the workers/);
        expect(out).toMatch(/stopped everything pnpm start started/);
        // In order: each service logged its own shutdown, the api first and the simulator last.
        const order = STOP_ORDER.map((name) => firstLineOf(out, name, /"msg":"shutdown complete"/));
        expect(
          order.every((i) => i >= 0),
          `every service logged "shutdown complete":\n${out.slice(-4000)}`,
        ).toBe(true);
        expect([...order].sort((a, b) => a - b)).toEqual(order);
      } finally {
        killAll([...tree, pnpm.child.pid!]);
      }
    },
    UP_MS + GONE_MS + 30_000,
  );

  it(
    "stops everything on Ctrl-C (SIGINT to the terminal's process group)",
    async () => {
      let tree: number[] = [];
      const pnpm = spawnCollecting(
        process.execPath,
        [pnpmPath(), "start", ...ANY_PORTS, "--scale", "analysis=0", "--scale", "factcheck=0", "--scale", "synthesis=0"],
        { ...cleanEnv(), REDIS_URL: inject("redisUrl") },
      );
      try {
        await pnpm.waitFor(/tracelane is up/, UP_MS);
        tree = descendants(pnpm.child.pid!);
        expect(tree.map(commandLine).filter((c) => /services\/.*\/src\/index\.ts/.test(c))).toHaveLength(3);
        // A terminal sends SIGINT to every process of its foreground group: pnpm, sh and the launcher.
        process.kill(-pnpm.child.pid!, "SIGINT");
        expect(await waitUntilGone(tree, GONE_MS)).toEqual([]);
        expect(pnpm.output()).toMatch(/SIGINT: stopping the api/);
        expect(pnpm.output()).toMatch(/stopped everything pnpm start started/);
      } finally {
        killAll([...tree, pnpm.child.pid!]);
      }
    },
    UP_MS + GONE_MS + 30_000,
  );

  it("fails naming an explicit REDIS_URL that does not answer, within 5 s of saying it connects, and starts no private Redis", async () => {
    // Accepts the TCP connection and never answers: the slowest way for a Redis to be missing.
    const silent = net.createServer(() => undefined);
    await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
    const url = `redis://127.0.0.1:${(silent.address() as net.AddressInfo).port}`;
    const start = spawnCollecting(process.execPath, ["--import", "tsx", "scripts/start.ts", ...ANY_PORTS], {
      ...cleanEnv(),
      REDIS_URL: url,
    });
    try {
      await start.waitFor(new RegExp(`connecting to redis at ${url}`), 60_000);
      const connecting = Date.now();
      expect(await start.exited).toBe(1);
      expect(Date.now() - connecting).toBeLessThan(6_500);
      const out = start.output();
      expect(out).toContain(`REDIS_URL ${url} did not answer within 5 s`);
      expect(out.indexOf("connecting to redis at")).toBeLessThan(out.indexOf("did not answer"));
      expect(out).not.toMatch(/started a private redis-server|tracelane is up|api#1/);
    } finally {
      start.child.kill("SIGKILL");
      silent.close();
    }
  }, 90_000);

  it("fails naming a --port that is taken, before starting anything", async () => {
    const holder = net.createServer();
    const port = await freePort();
    await new Promise<void>((resolve) => holder.listen(port, resolve));
    const start = spawnCollecting(process.execPath, ["--import", "tsx", "scripts/start.ts", "--port", `api=${port}`], {
      ...cleanEnv(),
      REDIS_URL: inject("redisUrl"),
    });
    try {
      expect(await start.exited).toBe(1);
      expect(start.output()).toContain(`--port api=${port}: port ${port} is already in use`);
      expect(start.output()).not.toMatch(/connecting to redis|#1 /);
    } finally {
      start.child.kill("SIGKILL");
      holder.close();
    }
  }, 90_000);
});

describe("pnpm --filter <service> start", () => {
  it("stops the service when pnpm gets SIGTERM", async () => {
    let tree: number[] = [];
    const pnpm = spawnCollecting(process.execPath, [pnpmPath(), "--filter", "@tracelane/llm-simulator", "start"], {
      ...cleanEnv(),
      PORT: "0",
      HOST: "127.0.0.1",
      LOG_FORMAT: "json",
    });
    try {
      await pnpm.waitFor(/"msg":"llm-simulator listening"/, 60_000);
      tree = descendants(pnpm.child.pid!);
      expect(tree.map(commandLine).some((c) => c.includes("src/index.ts"))).toBe(true);
      process.kill(pnpm.child.pid!, "SIGTERM");
      expect(await waitUntilGone(tree, GONE_MS)).toEqual([]);
      expect(pnpm.output()).toMatch(/"msg":"the process that started this one exited; shutting down"/);
      expect(pnpm.output()).toMatch(/"msg":"shutdown complete"/);
    } finally {
      killAll([...tree, pnpm.child.pid!]);
    }
  }, 120_000);
});
