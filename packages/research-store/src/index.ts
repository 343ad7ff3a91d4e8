export { ResearchStore, type ResearchStoreOptions, type CreateResearchInput, type CreateResult, type StageStart, type UpdateResult } from "./store.js";
export {
  RESEARCH_STATUSES,
  FINAL_STATUSES,
  STAGE_STATUSES,
  ResearchOptionsSchema,
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
