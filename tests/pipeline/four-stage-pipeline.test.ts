import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { definePipeline, RESEARCH_PIPELINE, RESEARCH_STAGES, type OutputOf, type StageOf } from "@tracelane/pipeline";
import { stageJobId } from "@tracelane/queue-contract";
import type { StageDefinition } from "@tracelane/stage-runner";
import { apiClient, type ApiClient } from "../support/api-client.js";
import { startInProcessPipeline, type InProcessPipeline } from "../support/in-process-pipeline.js";

// A fourth stage is one more line in the definition. Its prompt would live in its worker folder
// (services/review-worker/src/stage.ts); this test has none, so it passes the prompt itself.
const FOUR_STAGES = definePipeline([
  ...RESEARCH_STAGES,
  { stage: "review", queue: "research-review", service: "review-worker", defaultModel: "gpt-4.1-mini", output: "review" },
]);
type FourStage = StageOf<typeof FOUR_STAGES>;

const reviewStage: StageDefinition<FourStage> = {
  stage: "review",
  system: "You are a critical reviewer. Review the final report: what is well supported, what is missing, what to do next.",
  material: (outputs) => [{ title: "Final report", text: outputs.synthesis ?? "(missing)" }],
};

let pipeline: InProcessPipeline<FourStage, OutputOf<typeof FOUR_STAGES>>;
let api: ApiClient;

beforeAll(async () => {
  pipeline = await startInProcessPipeline({ redisUrl: inject("redisUrl"), pipeline: FOUR_STAGES, stages: [reviewStage] });
  api = apiClient(pipeline.apiUrl);
});

afterAll(async () => {
  await pipeline?.close();
});

describe("a pipeline with a fourth stage, from the definition alone", () => {
  it("runs a research through all four stages and shows four rows and four outputs in its view", async () => {
    // options.models takes the new stage too: the request schema follows the definition.
    const submitted = await api.submit({
      query: "What limits grid-scale battery storage?",
      options: { models: { review: "gpt-4.1-nano" } },
    });
    expect(submitted.status, JSON.stringify(submitted.body)).toBe(202);
    const id = submitted.body.id;
    const view = await pipeline.waitForFinal(id);

    expect(view.status, JSON.stringify(view.error)).toBe("completed");
    expect(Object.keys(view.stages)).toEqual(["analysis", "factcheck", "synthesis", "review"]);
    for (const stage of FOUR_STAGES.names) {
      expect(view.stages[stage], stage).toMatchObject({ status: "completed", attempts: 1 });
      expect(view.stages[stage].usage!.outputTokens, stage).toBeGreaterThan(0);
    }
    expect(view.stages.review.model).toBe("gpt-4.1-nano");
    expect(view.stages.synthesis.model).toBe("deepseek-v3.2");

    expect(Object.keys(view.result!)).toEqual(["analysis", "factCheck", "finalReport", "review"]);
    for (const [output, text] of Object.entries(view.result!)) expect(text.length, output).toBeGreaterThan(50);
    // The totals add up the fourth stage as well.
    expect(view.totals.outputTokens).toBe(FOUR_STAGES.names.reduce((sum, s) => sum + view.stages[s].usage!.outputTokens, 0));

    // GET /v1/research/:id shows the same four rows and outputs.
    const viaApi = (await api.get(id)) as unknown as typeof view;
    expect(Object.keys(viaApi.stages)).toEqual(["analysis", "factcheck", "synthesis", "review"]);
    expect(viaApi.result?.review).toBe(view.result?.review);

    // The synthesis worker enqueued the review on the new stage's own queue.
    const reviewJob = await pipeline.queues.queue("review").getJob(stageJobId(id, "review"));
    expect(reviewJob?.queueName).toBe("research-review");
    expect(await reviewJob?.getState()).toBe("completed");
  });

  it("the shipped pipeline still has three stages and refuses a model for a stage it does not have", async () => {
    expect(RESEARCH_PIPELINE.names).toEqual(["analysis", "factcheck", "synthesis"]);
    const shipped = await startInProcessPipeline({ redisUrl: inject("redisUrl") });
    try {
      const res = await apiClient(shipped.apiUrl).submit({ query: "q", options: { models: { review: "gpt-4.1-nano" } } });
      expect(res.status).toBe(400);
      expect(res.body).toMatchObject({
        error: {
          details: [
            { path: "options.models.review", message: 'unknown field "review"; allowed fields here: analysis, factcheck, synthesis' },
          ],
        },
      });
    } finally {
      await shipped.close();
    }
  });
});
