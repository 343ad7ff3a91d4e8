export {
  PriceTable,
  PriceFileSchema,
  loadPriceTable,
  type PriceFile,
  type CallCost,
  type DatedPrice,
  type ModelEntry,
  type ModelPrice,
  type PriceSource,
  type Rates,
  type TokenUsage,
} from "./price-table.js";
export { PriceBook, openPriceBook, type PriceBookLogger, type PriceBookOptions, type PriceReload } from "./price-book.js";
export { addCostUsd, addUsd, fromNanoUsd, NANO_USD_PER_USD, roundMs, roundUsd, sumUsd, toNanoUsd } from "./money.js";
export { allowedModelsEnv, ModelPolicy, stageModelEnvShape, type ModelRefusal, type PolicyStage } from "./model-policy.js";
export { WhatIfPricer, UnknownSwapModelError, type RecordedCall, type WhatIfResult, type WhatIfStage, type WhatIfFlag } from "./what-if.js";
