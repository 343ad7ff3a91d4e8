export {
  STAGES,
  QUEUE_NAMES,
  DEFAULT_QUEUE_PREFIX,
  DEFAULT_JOB_OPTIONS,
  nextStage,
  stageJobId,
  jobOptionsFromEnv,
  type Stage,
} from "./queues.js";
export {
  StageJobSchema,
  StageSchema,
  ResearchIdSchema,
  TraceCarrierSchema,
  type StageJob,
  type TraceCarrier,
} from "./payloads.js";
export { StageQueues, type StageQueuesOptions } from "./stage-queues.js";
