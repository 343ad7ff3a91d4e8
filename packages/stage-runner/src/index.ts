export {
  runStageWorker,
  serveStageWorker,
  type RunningStageWorker,
  type StageWorkerOptions,
  type TracingLike,
} from "./run-stage-worker.js";
export { registerWorker, type RegisterWorkerOptions, type RegisteredWorker, type WorkerMetrics } from "./register-worker.js";
export { createStageProcessor, isFinalAttempt, type StageOutcome } from "./stage-processor.js";
export {
  ChatClient,
  type ChatMessage,
  type ChatResult,
  type ChatClientConfig,
  type ChatOptions,
  type ChatTool,
  type ChatToolCall,
} from "./chat-client.js";
export { loadStageConfig, stageEnvNames, DEFAULT_STAGE_MODELS, DEFAULT_LLM_BASE_URL, type StageWorkerConfig } from "./env.js";
export type {
  StageDefinition,
  StageInput,
  StageMaterial,
  StructuredAnswer,
  AnswerLimits,
  ClaimCheckDefinition,
  ClaimTool,
  ToolContext,
  ClaimVerdictAnswer,
} from "./stage-definition.js";
export { CLAIM_VERDICTS } from "@tracelane/research-store";
export { ModelPolicies, RetryBudgetExceededError, type ModelPolicyConfig, type CircuitStateName } from "./resilience/model-policies.js";
export { isTransient, retryAfterMs, backoffDelay } from "./resilience/transient.js";
export { fitToBudget, ContextTooLongError } from "./context/fit-context.js";
export { countTokens, countMessageTokens } from "./context/tokens.js";
export { composeMessages } from "./context/compose-prompt.js";
export {
  ProviderAuthError,
  InvalidModelRequestError,
  ContextLengthExceededError,
  ModelCallError,
  CircuitOpenError,
  BudgetExceededError,
  BudgetUnverifiableError,
  InvalidJobDataError,
  InvalidModelOutputError,
  ToolTurnsExhaustedError,
  classifyModelError,
  errorTypeOf,
} from "./errors.js";
export { inferProvider } from "./provider.js";
