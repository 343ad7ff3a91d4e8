import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { stageJobId } from "@tracelane/queue-contract";
import { freePort } from "@tracelane/testkit";
import { apiClient } from "../support/api-client.js";
import { startInProcessPipeline, type InProcessPipeline } from "../support/in-process-pipeline.js";

/** Long enough that the next research's analysis surely meets the circuit still open, even on a loaded machine. */
const HALF_OPEN_MS = 5_000;

describe("an open circuit makes the job wait, without spending its attempts", () => {
  let pipeline: InProcessPipeline;
  let health: string;

  beforeAll(async () => {
    const port = await freePort();
    health = `http://127.0.0.1:${port}`;
    pipeline = await startInProcessPipeline({
      redisUrl: inject("redisUrl"),
      env: {
        // One failed call (no retries) opens a circuit; one job attempt, so any spent attempt fails the research.
        LLM_MAX_RETRIES: "0",
        BREAKER_THRESHOLD: "1",
        BREAKER_HALF_OPEN_MS: String(HALF_OPEN_MS),
        JOB_ATTEMPTS: "1",
      },
      // analysis has no fallback model: when gpt-4.1 is open, every model of the stage is.
      stageEnv: { analysis: { HEALTH_PORT: String(port) } },
    });
  });
  afterAll(async () => {
    await pipeline?.close();
  });

  const get = async (path: string) => {
    const res = await fetch(`${health}${path}`);
    return { status: res.status, body: (await res.json()) as { status: string; openCircuits: string[] } };
  };

  it("reports the open circuit on /healthz (degraded, still 200) and /readyz (503), then delays the job until half-open and completes it", async () => {
    const api = apiClient(pipeline.apiUrl);
    const key = `${pipeline.simulator.baseURL}|gpt-4.1`;
    expect(await get("/healthz")).toMatchObject({ status: 200, body: { status: "ok", openCircuits: [] } });
    expect((await get("/readyz")).status).toBe(200);

    const broken = await api.submit({ query: "Analysis outage [[sim:fault=503;model=gpt-4.1;times=1]]" });
    expect(await pipeline.waitForFinal(broken.body.id)).toMatchObject({ status: "failed", error: { stage: "analysis", type: "http_503" } });

    // Open, and nothing has called since: it stays open until a call comes after HALF_OPEN_MS.
    expect(await get("/healthz")).toMatchObject({ status: 200, body: { status: "degraded", openCircuits: [key] } });
    expect(await get("/readyz")).toMatchObject({ status: 503, body: { status: "unavailable", openCircuits: [key] } });

    const { body } = await api.submit({ query: "Healthy question while gpt-4.1's circuit is open" });
    const view = await pipeline.waitForFinal(body.id, HALF_OPEN_MS + 20_000);
    expect(view.status, JSON.stringify(view.error)).toBe("completed");
    expect(view.stages.analysis.model).toBe("gpt-4.1");

    // It met the open circuit and waited; the one job attempt it has was never spent.
    const events = await pipeline.store.events(body.id, "0", 1000);
    const waits = events.filter((e) => e.type === "stage.retrying" && e.stage === "analysis");
    expect(waits.length).toBeGreaterThan(0);
    expect(waits.every((e) => (e.data as { error?: { type?: string } }).error?.type === "circuit_open")).toBe(true);
    const job = await pipeline.queues.queue("analysis").getJob(stageJobId(body.id, "analysis"));
    expect(job?.attemptsMade).toBe(1); // bullmq counts the attempt that completed; the waits are not attempts
    expect(await job?.getState()).toBe("completed");

    // The trial call after half-open succeeded and closed the circuit.
    expect(await get("/healthz")).toMatchObject({ status: 200, body: { status: "ok", openCircuits: [] } });
    expect(await get("/readyz")).toMatchObject({ status: 200, body: { status: "ready" } });
  });
});
