import { partitionOf, partitionTags } from "@tracelane/runtime";
import { RESEARCH_STATUSES, type ResearchStatus } from "./schemas.js";

export const DEFAULT_RESEARCH_PREFIX = "tracelane:research";

/**
 * Researches are spread over this many partitions by id (runtime's partitionOf). A partition's records, event
 * streams, indexes, owner indexes and spend counters share one hash tag, so every script over a research and its
 * indexes stays in one Redis Cluster slot; readers of an index merge the partitions. Changing it orphans stored
 * researches (their keys move): it is part of the layout, not a setting.
 */
export const RESEARCH_PARTITIONS = 16;

/** The hash tag of partition `k` (`{r<k>…}`), from the tags that spread evenly over the slot space. */
const tagOf = (k: number) => partitionTags("r", RESEARCH_PARTITIONS)[k]!;

/** Which partition a research lives in. */
export const researchPartition = (id: string) => partitionOf(id, RESEARCH_PARTITIONS);

/** Every partition, for readers that merge them. */
export const ALL_PARTITIONS: readonly number[] = Array.from({ length: RESEARCH_PARTITIONS }, (_, k) => k);

/** `{prefix}:{r<k>}`: what every key of partition k starts with. */
const base = (prefix: string, partition: number) => `${prefix}:${tagOf(partition)}`;

export function researchKeys(prefix: string, id: string) {
  const at = base(prefix, researchPartition(id));
  return {
    record: `${at}:${id}`,
    events: `${at}:${id}:events`,
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
 * The researches one API key created in a partition, a sorted set of research ids scored by createdAt (GET
 * /v1/research of a member key merges the partitions). Written with the research, trimmed to the record TTL like
 * the other indexes.
 */
export const ownerIndexKey = (prefix: string, owner: string, partition: number) => `${base(prefix, partition)}:index:owner:${owner}`;

/**
 * Which research (and so which key) a trace id belongs to: `{ researchId, owner }` JSON, set once (NX) right after
 * the research is created. Keyed by trace id, not in the research's partition: a reader only has the trace id.
 */
export const traceOwnerKey = (prefix: string, traceId: string) => `${prefix}:trace:${traceId}`;

/** The UTC day (YYYY-MM-DD) a spend counts towards. */
export const spendDay = (at: Date = new Date()) => at.toISOString().slice(0, 10);

/**
 * What `subject` (an API key id, or `ip:<address>` without keys) spent on model calls on a UTC day in one
 * partition, in whole nano-dollars: a research's calls are charged in its own partition, in the same script that
 * records them, and the day's spend is the sum over the partitions.
 */
export const dailySpendKey = (prefix: string, subject: string, day: string, partition: number) =>
  `${base(prefix, partition)}:spend:${day}:${subject}`;

/** A day's spend key outlives its day by one more, then expires. */
export const DAILY_SPEND_TTL_SECONDS = 2 * 24 * 3600;

/**
 * A partition's research indexes, sorted sets of research ids scored by createdAt (epoch ms), kept by the
 * same Lua step as every status change:
 *   {p}:{r<k>}:index            every research of the partition (the score source for the others)
 *   {p}:{r<k>}:index:{status}   its researches in that status now (`queued` also drives the lost-enqueue recovery)
 * Entries older than the record TTL are trimmed on create, and a reader drops those whose record expired.
 */
export function researchIndexKeys(prefix: string, partition: number): { all: string; byStatus: Record<ResearchStatus, string> } {
  const at = base(prefix, partition);
  const byStatus = Object.fromEntries(RESEARCH_STATUSES.map((s) => [s, `${at}:index:${s}`])) as Record<ResearchStatus, string>;
  return { all: `${at}:index`, byStatus };
}

/** A partition's index keys as the Lua scripts take them: every research, then one per status in RESEARCH_STATUSES order. */
export const indexKeyList = (prefix: string, partition: number): string[] => {
  const keys = researchIndexKeys(prefix, partition);
  return [keys.all, ...RESEARCH_STATUSES.map((s) => keys.byStatus[s])];
};
