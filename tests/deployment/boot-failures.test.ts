import net from "node:net";
import { describe, expect, inject, it } from "vitest";
import { freePort, spawnService, type ServiceProcess } from "@tracelane/testkit";

/** The entrypoints that read each kind of variable (the simulator has no Redis). */
const ALL = ["api", "analysis-worker", "trace-collector", "llm-simulator"] as const;
const WITH_REDIS = ["api", "analysis-worker", "trace-collector"] as const;

const entry = (service: string) => `services/${service}/src/index.ts`;

/** Start the real entrypoint (tsx), wait for it to exit, return its exit code and output lines. */
async function boot(service: string, env: Record<string, string>): Promise<{ code: number | null; lines: string[] }> {
  const proc = spawnService(service, entry(service), { OTEL_SDK_DISABLED: "true", ...env });
  const code = await proc.exited;
  return { code, lines: proc.output().trim().split("\n") };
}

describe("a service started with a bad environment", () => {
  it("exits 1 with one plain line naming LOG_LEVEL, the bad value and the allowed ones", async () => {
    const results = await Promise.all(ALL.map((service) => boot(service, { LOG_LEVEL: "loud" })));
    results.forEach(({ code, lines }, i) => {
      expect(code, ALL[i]).toBe(1);
      expect(lines, ALL[i]).toEqual([
        `${ALL[i]}: cannot start: LOG_LEVEL: must be one of fatal, error, warn, info, debug, trace, silent (got "loud")`,
      ]);
    });
  }, 120_000);

  it("exits 1 naming REDIS_URL the same way in every service that uses Redis", async () => {
    const results = await Promise.all(WITH_REDIS.map((service) => boot(service, { REDIS_URL: "notaurl" })));
    results.forEach(({ code, lines }, i) => {
      expect(code, WITH_REDIS[i]).toBe(1);
      expect(lines, WITH_REDIS[i]).toEqual([
        `${WITH_REDIS[i]}: cannot start: REDIS_URL: must be a redis:// or rediss:// URL such as redis://127.0.0.1:6379 (got "notaurl")`,
      ]);
    });
  }, 120_000);

  it("says which Redis it connects to, then fails naming it within 5 s when it does not answer", async () => {
    // Accepts TCP connections and never answers.
    const silent = net.createServer(() => undefined);
    await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
    const url = `redis://127.0.0.1:${(silent.address() as net.AddressInfo).port}`;
    try {
      const runs = WITH_REDIS.map(async (service) => {
        const proc = spawnService(service, entry(service), { OTEL_SDK_DISABLED: "true", LOG_FORMAT: "json", REDIS_URL: url, PORT: "0" });
        await proc.waitForOutput(new RegExp(`"msg":"connecting to redis at ${url}"`), 60_000);
        const connecting = Date.now();
        const code = await proc.exited;
        return { code, waitedMs: Date.now() - connecting, lines: proc.output().trim().split("\n") };
      });
      const results = await Promise.all(runs);
      results.forEach(({ code, waitedMs, lines }, i) => {
        expect(code, WITH_REDIS[i]).toBe(1);
        expect(waitedMs, WITH_REDIS[i]).toBeLessThan(6_500);
        expect(lines.at(-1)).toMatch(new RegExp(`^${WITH_REDIS[i]}: cannot start: REDIS_URL: Redis at ${url} did not answer within 5 s`));
      });
    } finally {
      silent.close();
    }
  }, 120_000);
});

describe("a blank variable means unset, so its default applies", () => {
  it('api PORT="" takes the default port 3000 (here held, so it fails naming PORT=3000 instead of listening anywhere)', async () => {
    // Hold 3000 so the outcome does not depend on whether something else uses it.
    const holder = net.createServer();
    await new Promise<void>((resolve) => {
      holder.once("error", () => resolve()); // already taken by someone else: just as good
      holder.listen(3000, resolve);
    });
    try {
      const { code, lines } = await boot("api", { PORT: "", REDIS_URL: inject("redisUrl"), LOG_LEVEL: "warn" });
      expect(code).toBe(1);
      // The api binds loopback by default when it runs without API keys.
      expect(lines.at(-1)).toMatch(/^api: cannot start: PORT: port 3000 on 127\.0\.0\.1 is already in use \(got 3000\)/);
    } finally {
      holder.close();
    }
  }, 60_000);

  it('a worker with WORKER_CONCURRENCY="" runs with the default concurrency 8', async () => {
    let proc: ServiceProcess | undefined;
    try {
      proc = spawnService("analysis-worker", entry("analysis-worker"), {
        OTEL_SDK_DISABLED: "true",
        LOG_FORMAT: "json",
        WORKER_CONCURRENCY: "",
        HEALTH_PORT: String(await freePort()),
        REDIS_URL: inject("redisUrl"),
        TRACELANE_QUEUE_PREFIX: `boot-${process.pid}`,
      });
      await proc.waitForOutput(/"msg":"analysis worker ready"/, 60_000);
      const ready = proc
        .output()
        .split("\n")
        .find((l) => l.includes("analysis worker ready"))!;
      expect(JSON.parse(ready)).toMatchObject({ concurrency: 8 });
      expect(await proc.stop("SIGTERM")).toBe(0);
    } finally {
      await proc?.stop("SIGKILL");
    }
  }, 60_000);
});
