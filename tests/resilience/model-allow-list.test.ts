import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { simulatorStats } from "../support/simulator.js";
import { startInProcessPipeline, type InProcessPipeline } from "../support/in-process-pipeline.js";

/**
 * The api refuses options.models outside a stage's allowed models (services/api/test/model-policy.test.ts);
 * the worker checks again before any call, for a research that reached the queue some other way
 * (written before the policy changed, or straight into Redis).
 */
describe("a stage worker's model allow-list (defence in depth)", () => {
  let pipeline: InProcessPipeline;
  beforeAll(async () => {
    pipeline = await startInProcessPipeline({
      redisUrl: inject("redisUrl"),
      stageEnv: { factcheck: { FACTCHECK_ALLOWED_MODELS: "o1-pro" } },
    });
  });
  afterAll(async () => {
    await pipeline?.close();
  });

  /** A research as if the api had accepted it, then its first job. */
  async function enqueueDirectly(models: Record<string, string>): Promise<string> {
    const id = randomUUID().replaceAll("-", "");
    await pipeline.store.create({ id, query: "Went around the api", options: { models }, traceId: null });
    await pipeline.queues.publish(id, pipeline.pipeline.first);
    return id;
  }

  it("fails the job with model_not_allowed before calling a model that is not allowed for its stage", async () => {
    const simulatorUrl = pipeline.simulator.baseURL.replace(/\/v1$/, "");
    const before = (await simulatorStats(simulatorUrl)).byModel["o1-pro"] ?? 0;
    const id = await enqueueDirectly({ analysis: "o1-pro" });
    const view = await pipeline.waitForFinal(id);
    expect(view.status).toBe("failed");
    expect(view.error).toMatchObject({ stage: "analysis", type: "model_not_allowed" });
    expect(view.error!.message).toMatch(
      /^Stopped before analysis: Model "o1-pro" is not allowed for the analysis stage\. Allowed: gpt-4\.1, /,
    );
    expect(view.error!.message).toMatch(/ANALYSIS_ALLOWED_MODELS/);
    expect(view.stages.analysis).toMatchObject({ status: "failed", attempts: 1 });
    expect(view.totals.costUsd).toBe(0);
    expect((await simulatorStats(simulatorUrl)).byModel["o1-pro"] ?? 0).toBe(before);
  });

  it("runs a model its stage's <STAGE>_ALLOWED_MODELS lists, and refuses a priced one it does not", async () => {
    const allowed = await pipeline.waitForFinal(await enqueueDirectly({ factcheck: "o1-pro" }));
    expect(allowed.status).toBe("completed");
    expect(allowed.stages.factcheck.model).toBe("o1-pro");

    const refused = await pipeline.waitForFinal(await enqueueDirectly({ factcheck: "gpt-4.1-mini" }));
    expect(refused.error).toMatchObject({ stage: "factcheck", type: "model_not_allowed" });
    expect(refused.error!.message).toMatch(/Allowed: gemini-2\.5-flash, o1-pro\. .*FACTCHECK_ALLOWED_MODELS\.$/);
  });
});
