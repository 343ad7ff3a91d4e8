import http from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { freePort } from "@tracelane/testkit";
import { apiClient } from "../support/api-client.js";
import { startInProcessPipeline, type InProcessPipeline } from "../support/in-process-pipeline.js";
import { simulatorStats } from "../support/simulator.js";
import { modelCallsOfResearch } from "../support/spans.js";

/**
 * Issue 10's cascade: a burst of client-side connection failures across concurrent model calls
 * (there: keep-alive sockets the server had closed; here: a proxy that drops the first RESETS
 * requests without an answer). Every call recovers inside its own retries, so the breaker must not
 * count any of them: with the breaker inside the retry, each attempt counted, 5 in a row opened it
 * and every research behind it failed with circuit_open while the provider was fine.
 */
const RESETS = 10;
const RESEARCHES = 32;

/** An HTTP proxy to the simulator that destroys the first `resets` requests' connections unanswered. */
async function resettingProxy(resets: number) {
  const state = { target: "", resets: 0, forwarded: 0 };
  const server = http.createServer((req, res) => {
    if (state.resets < resets) {
      state.resets++;
      req.socket.destroy();
      return;
    }
    state.forwarded++;
    const upstream = http.request(`${state.target}${req.url}`, { method: req.method, headers: req.headers }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    upstream.on("error", () => res.destroy());
    req.pipe(upstream);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return { state, server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

describe("a burst of connection resets under concurrent model calls", () => {
  let pipeline: InProcessPipeline;
  let proxy: Awaited<ReturnType<typeof resettingProxy>>;
  let healthPort: number;

  beforeAll(async () => {
    proxy = await resettingProxy(RESETS);
    healthPort = await freePort();
    pipeline = await startInProcessPipeline({
      redisUrl: inject("redisUrl"),
      env: {
        LLM_BASE_URL: `${proxy.url}/v1`,
        WORKER_CONCURRENCY: "8",
        // More retries per call than there are resets: no call can fail, only attempts can.
        LLM_MAX_RETRIES: "10",
        LLM_RETRY_BASE_MS: "5",
        LLM_RETRY_MAX_DELAY_MS: "20",
        BREAKER_THRESHOLD: "5",
        BREAKER_HALF_OPEN_MS: "600000",
        // An open circuit would fail the research at once instead of making it wait.
        CIRCUIT_OPEN_MAX_WAIT_MS: "0",
        JOB_ATTEMPTS: "1",
      },
      stageEnv: { analysis: { HEALTH_PORT: String(healthPort) } },
    });
    proxy.state.target = pipeline.simulator.baseURL.replace(/\/v1$/, "");
  });
  afterAll(async () => {
    await pipeline?.close();
    proxy?.server.closeAllConnections();
    await new Promise((r) => proxy?.server.close(r));
  });

  it("fails no research and leaves the breaker closed: each call recovers inside its own retries", async () => {
    const api = apiClient(pipeline.apiUrl);
    const submitted = await Promise.all(Array.from({ length: RESEARCHES }, (_, i) => api.submit({ query: `Burst question ${i}` })));
    const views = await Promise.all(submitted.map((s) => pipeline.waitForFinal(s.body.id, 30_000)));

    expect(views.filter((v) => v.status !== "completed").map((v) => v.error)).toEqual([]);
    // Recovered inside the model call: no research needed a second job attempt.
    expect(views.every((v) => v.stages.analysis.attempts === 1)).toBe(true);
    expect(proxy.state.resets).toBe(RESETS);
    // As in the issue: the provider saw no fault at all; every failure was on the client's side.
    const sim = await simulatorStats(proxy.state.target);
    expect(Object.values(sim.faults).reduce((a, b) => a + b, 0)).toBe(0);
    // Every model call reached it exactly once (analysis, synthesis and each claim's turns): no call failed and
    // was made again by a job retry. The evidence searches go to /search and are not counted here.
    expect(views.every((v) => v.stages.factcheck.claims?.every((c) => c.status === "checked" && c.attempts === 1))).toBe(true);
    expect(sim.requests).toBe(views.reduce((n, v) => n + modelCallsOfResearch(v), 0));

    const health = (await (await fetch(`http://127.0.0.1:${healthPort}/healthz`)).json()) as {
      status: string;
      openCircuits: string[];
      circuits: Record<string, string>;
    };
    expect(health.status).toBe("ok");
    expect(health.openCircuits).toEqual([]);
    expect(health.circuits).toEqual({ [`${proxy.url}/v1|gpt-4.1`]: "closed" });
  });
});
