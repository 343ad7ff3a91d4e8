export {
  definePipeline,
  PipelineDefinitionError,
  MAX_CLAIMS_LIMIT,
  type Pipeline,
  type PipelineStage,
  type StageLine,
  type StageOf,
  type OutputOf,
} from "./define.js";
export {
  RESEARCH_PIPELINE,
  RESEARCH_STAGES,
  type ResearchPipeline,
  type Stage,
  type OutputKey,
  type WorkerService,
} from "./research-pipeline.js";
export * from "./attributes.js";
