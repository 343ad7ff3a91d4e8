export { runStageWorker, type RunningStageWorker, type TracingLike } from "./run-stage-worker.js";
export { registerWorker, type RegisterWorkerOptions, type RegisteredWorker, type WorkerMetrics } from "./register-worker.js";
export { createStageProcessor, isFinalAttempt, type StageOutcome } from "./stage-processor.js";
export { ChatClient, type ChatMessage, type ChatResult, type ChatClientConfig } from "./chat-client.js";
export { loadStageConfig, stageEnvNames, DEFAULT_STAGE_MODELS, DEFAULT_LLM_BASE_URL, type StageWorkerConfig } from "./env.js";
export type { StageDefinition, StageInput } from "./stage-definition.js";
export {
  ProviderAuthError,
  InvalidModelRequestError,
  ContextLengthExceededError,
  ModelCallError,
  InvalidJobDataError,
  classifyModelError,
  errorTypeOf,
} from "./errors.js";
export { inferProvider } from "./provider.js";
