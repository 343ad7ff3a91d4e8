export {
  ResearchStore,
  type ResearchStoreOptions,
  type ResearchStoreOptionsFor,
  type CreateResearchInput,
  type CreateResult,
  type StageCall,
  type StageStart,
  type UpdateResult,
} from "./store.js";
export {
  RESEARCH_STATUSES,
  FINAL_STATUSES,
  STAGE_STATUSES,
  ResearchOptionsSchema,
  researchOptionsSchema,
  emptyStages,
  isFinal,
  type ResearchOptions,
  type ResearchStatus,
  type ResearchView,
  type ResearchEvent,
  type ResearchEventType,
  type ResearchError,
  type StageRecord,
  type StageStatus,
} from "./schemas.js";
export { DEFAULT_RESEARCH_PREFIX, researchKeys } from "./keys.js";
