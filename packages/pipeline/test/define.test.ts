import { describe, expect, it } from "vitest";
import { definePipeline, PipelineDefinitionError, RESEARCH_PIPELINE } from "@tracelane/pipeline";

const line = (stage: string, over: Record<string, string> = {}) => ({
  stage,
  queue: `q-${stage}`,
  service: `${stage}-worker`,
  defaultModel: "gpt-4.1",
  output: stage,
  ...over,
});

describe("definePipeline", () => {
  it("chains the stages in the order of the lines and derives each stage's env prefix and prompt module", () => {
    const p = definePipeline([line("draft"), line("edit"), line("publish")]);
    expect(p.names).toEqual(["draft", "edit", "publish"]);
    expect([p.first, p.last]).toEqual(["draft", "publish"]);
    expect(p.stages.map((s) => s.next)).toEqual(["edit", "publish", null]);
    expect(p.next("edit")).toBe("publish");
    expect(p.next("publish")).toBeUndefined();
    expect(p.stage("edit")).toMatchObject({
      index: 1,
      envPrefix: "EDIT",
      promptModule: "services/edit-worker/src/stage.ts",
      queue: "q-edit",
    });
    expect(p.stageOfService("publish-worker")?.stage).toBe("publish");
    expect(p.has("edit")).toBe(true);
    expect(p.has("review")).toBe(false);
  });

  it("names the known stages when asked for one it does not have", () => {
    expect(() => RESEARCH_PIPELINE.stage("review" as never)).toThrow(
      'unknown stage "review"; the pipeline\'s stages are analysis, factcheck, synthesis',
    );
  });

  it.each([
    ["a stage name BullMQ ids and env names cannot carry", [line("fact-check")], /lower-case letters and digits/],
    ["a queue name with ':'", [line("a", { queue: "x:y" })], /queue "x:y"/],
    ["two stages on one queue", [line("a", { queue: "q" }), line("b", { queue: "q" })], /share the queue "q"/],
    ["two stages with one output name", [line("a", { output: "out" }), line("b", { output: "out" })], /share the output "out"/],
    ["two stages in one worker service", [line("a", { service: "w" }), line("b", { service: "w" })], /share the service "w"/],
    ["a stage without a default model", [line("a", { defaultModel: "" })], /defaultModel/],
  ])("rejects %s", (_what, lines, message) => {
    expect(() => definePipeline(lines as unknown as [ReturnType<typeof line>])).toThrow(PipelineDefinitionError);
    expect(() => definePipeline(lines as unknown as [ReturnType<typeof line>])).toThrow(message);
  });
});
