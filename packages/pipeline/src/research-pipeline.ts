import { definePipeline } from "./define.js";

/**
 * The research pipeline. Adding a stage: its worker folder (services/<stage>-worker, with its
 * prompt in src/stage.ts), one line here, and its service in docker-compose.yml. The request
 * schema, the research view, the queues, the launcher, `pnpm start`/`pnpm demo` and the test
 * pipeline follow from this list.
 */
export const RESEARCH_STAGES = [
  { stage: "analysis", queue: "research-analysis", service: "analysis-worker", defaultModel: "gpt-4.1", output: "analysis" },
  {
    stage: "factcheck",
    queue: "research-factcheck",
    service: "factcheck-worker",
    defaultModel: "gemini-2.5-flash",
    output: "factCheck",
    fanOut: "claims",
  },
  { stage: "synthesis", queue: "research-synthesis", service: "synthesis-worker", defaultModel: "deepseek-v3.2", output: "finalReport" },
] as const;

export const RESEARCH_PIPELINE = definePipeline(RESEARCH_STAGES);
export type ResearchPipeline = typeof RESEARCH_PIPELINE;

/** A stage of the shipped pipeline. */
export type Stage = (typeof RESEARCH_STAGES)[number]["stage"];
/** An output name of the shipped pipeline (`result.analysis`, `result.finalReport`...). */
export type OutputKey = (typeof RESEARCH_STAGES)[number]["output"];
/** A worker service of the shipped pipeline. */
export type WorkerService = (typeof RESEARCH_STAGES)[number]["service"];
