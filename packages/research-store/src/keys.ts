import { RESEARCH_STATUSES, type ResearchStatus } from "./schemas.js";

export const DEFAULT_RESEARCH_PREFIX = "tracelane:research";

export function researchKeys(prefix: string, id: string) {
  return {
    record: `${prefix}:${id}`,
    events: `${prefix}:${id}:events`,
  };
}

/** Research hash field holding the claims (JSON array of strings) the claim source stage made. */
export const CLAIMS_FIELD = "claims";
/** Research hash field of claim `index`'s check (a ClaimRecord as JSON). */
export const claimField = (stage: string, index: number) => `claim.${stage}.${index}`;
/** Set with a claim's final record: first writer wins, so a claim is checkpointed (and charged) once. */
export const claimDoneField = (stage: string, index: number) => `claimdone.${stage}.${index}`;

/**
 * What attempts of a stage paid for and threw away (an answer that never matched its schema): whole nano-dollars
 * and tokens, added with HINCRBY so concurrent attempts never lose each other's spend. The view adds them to the
 * stage's usage, cost and retry cost.
 */
export const wastedFields = (stage: string) => ({
  nanoUsd: `wasted.${stage}.nano_usd`,
  inputTokens: `wasted.${stage}.input_tokens`,
  outputTokens: `wasted.${stage}.output_tokens`,
  cachedInputTokens: `wasted.${stage}.cached_input_tokens`,
});

export const idempotencyKey = (prefix: string, key: string) => `${prefix}:idem:${key}`;

/**
 * The researches one API key created, a sorted set of research ids scored by createdAt (GET /v1/research
 * of a member key). Written with the research, trimmed to the record TTL like the other indexes.
 */
export const ownerIndexKey = (prefix: string, owner: string) => `${prefix}:index:owner:${owner}`;

/** Which research (and so which key) a trace id belongs to: `{ researchId, owner }` JSON, set once when the research is created. */
export const traceOwnerKey = (prefix: string, traceId: string) => `${prefix}:trace:${traceId}`;

/** The UTC day (YYYY-MM-DD) a spend counts towards. */
export const spendDay = (at: Date = new Date()) => at.toISOString().slice(0, 10);

/** What `subject` (an API key id, or `ip:<address>` without keys) spent on model calls on a UTC day, in whole nano-dollars. */
export const dailySpendKey = (prefix: string, subject: string, day: string) => `${prefix}:spend:${day}:${subject}`;

/** A day's spend key outlives its day by one more, then expires. */
export const DAILY_SPEND_TTL_SECONDS = 2 * 24 * 3600;

/**
 * The research indexes, sorted sets of research ids scored by createdAt (epoch ms), kept by the
 * same Lua step as every status change:
 *   {p}:index            every research (the score source for the others)
 *   {p}:index:{status}   the researches in that status now (`queued` also drives the lost-enqueue recovery)
 * Entries older than the record TTL are trimmed on create, and a reader drops those whose record expired.
 */
export function researchIndexKeys(prefix: string): { all: string; byStatus: Record<ResearchStatus, string> } {
  const byStatus = Object.fromEntries(RESEARCH_STATUSES.map((s) => [s, `${prefix}:index:${s}`])) as Record<ResearchStatus, string>;
  return { all: `${prefix}:index`, byStatus };
}

/** The index keys as the Lua scripts take them: every research, then one per status in RESEARCH_STATUSES order. */
export const indexKeyList = (prefix: string): string[] => {
  const keys = researchIndexKeys(prefix);
  return [keys.all, ...RESEARCH_STATUSES.map((s) => keys.byStatus[s])];
};
