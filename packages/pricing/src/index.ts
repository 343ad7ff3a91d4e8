export { PriceTable, loadPriceTable, type ModelPrice, type TokenUsage, type CallCost } from "./price-table.js";
export { addCostUsd, addUsd, fromNanoUsd, NANO_USD_PER_USD, roundMs, roundUsd, sumUsd, toNanoUsd } from "./money.js";
export { allowedModelsEnv, ModelPolicy, stageModelEnvShape, type ModelRefusal, type PolicyStage } from "./model-policy.js";
export { whatIf, UnknownSwapModelError, type RecordedCall, type WhatIfResult, type WhatIfStage, type WhatIfFlag } from "./what-if.js";
