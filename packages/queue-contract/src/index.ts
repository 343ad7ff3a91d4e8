export {
  STAGES,
  QUEUE_NAMES,
  DEFAULT_QUEUE_PREFIX,
  queuePrefix,
  shardQueueNames,
  QUEUE_SHARDS_MAX,
  envQueueShards,
  DEFAULT_JOB_OPTIONS,
  stageJobId,
  claimJobId,
  jobOptionsFromEnv,
  type Stage,
} from "./queues.js";
export {
  StageJobSchema,
  StageSchema,
  stageJobSchema,
  stageSchema,
  ResearchIdSchema,
  TraceCarrierSchema,
  type StageJob,
  type TraceCarrier,
} from "./payloads.js";
export { StageQueues, type StageQueuesOptions } from "./stage-queues.js";
export {
  REPRICE_QUEUE,
  REPRICE_JOB_OPTIONS,
  RepriceIdSchema,
  RepriceJobSchema,
  newRepriceId,
  repriceQueuePrefix,
  type RepriceJob,
  type RepriceProgress,
} from "./reprice.js";
