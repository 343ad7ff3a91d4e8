import { createHash } from "node:crypto";
import { batch, mergeDesc, type RedisClient } from "@tracelane/runtime";
import { MAX_CLAIMS_LIMIT as MAX_CLAIMS, RESEARCH_PIPELINE, type OutputKey, type Pipeline, type Stage } from "@tracelane/pipeline";
import { addCostUsd, addUsd, fromNanoUsd, roundMs, roundUsd, toNanoUsd } from "@tracelane/pricing";
import {
  CANCEL_SCRIPT,
  CREATE_SCRIPT,
  FAIL_SCRIPT,
  STAGE_CALL_AFTER_CANCEL_SCRIPT,
  CLAIM_AFTER_CANCEL_SCRIPT,
  STAGE_WASTED_SCRIPT,
  STAGE_RETRYING_SCRIPT,
  REPRICE_SCRIPT,
  START_STAGE_SCRIPT,
  UPDATE_SCRIPT,
} from "./lua.js";
import {
  claimDoneField,
  claimField,
  CLAIMS_FIELD,
  DAILY_SPEND_TTL_SECONDS,
  ALL_PARTITIONS,
  dailySpendKey,
  DEFAULT_RESEARCH_PREFIX,
  idempotencyKey,
  indexKeyList,
  ownerIndexKey,
  researchIndexKeys,
  researchKeys,
  researchPartition,
  spendDay,
  traceOwnerKey,
  wastedFields,
} from "./keys.js";
import {
  type ResearchError,
  type ResearchEvent,
  type ResearchEventType,
  type ResearchOptions,
  type ResearchStatus,
  type ResearchView,
  type ClaimRecord,
  type RepricedCosts,
  type StageRecord,
  type TokenUsage,
  addUsage,
  emptyStages,
  RESEARCH_STATUSES,
} from "./schemas.js";
import { claimsOf, stageOutputs, toView } from "./view.js";

export interface ResearchStoreOptions {
  prefix?: string;
  /** How long a research record and its events live after the last change. */
  ttlSeconds?: number;
}

export interface ResearchStoreOptionsFor<S extends string, O extends string> extends ResearchStoreOptions {
  /** The stages a record has rows and outputs for; default the shipped research pipeline. */
  pipeline?: Pipeline<S, O>;
}

export interface CreateResearchInput {
  id: string;
  query: string;
  options: ResearchOptions;
  traceId: string | null;
  idempotencyKey?: string;
  /** The API key id (`key_…`) that created it; it alone (and admins) may see it. Absent when the api runs without keys. */
  owner?: string;
  /**
   * Whose daily spend its model calls count towards (DAILY_SPEND_CAP_USD): the API key id, or
   * `ip:<address>` when the api runs without keys. Absent: nobody's.
   */
  spendSubject?: string;
}

export type CreateResult =
  | { outcome: "created"; id: string }
  | { outcome: "existing"; id: string }
  /** The idempotency key was used before for a different request body. */
  | { outcome: "conflict"; id: string };

/** "duplicate": another attempt already checkpointed this stage (its output stays). */
export type UpdateResult = "applied" | "final" | "missing" | "duplicate";

/** What an Idempotency-Key is bound to besides its research id: the request body (query and options). */
const requestFingerprint = (query: string, options: unknown) =>
  createHash("sha256")
    .update(JSON.stringify([query, options]))
    .digest("hex")
    .slice(0, 32);

const UPDATE_RESULTS: Record<number, UpdateResult> = { 1: "applied", 0: "final", [-1]: "missing", 2: "duplicate" };

/** The research as a stage attempt found it, and whether the attempt started. */
export type StageStart<S extends string = Stage, O extends string = OutputKey> =
  | { result: "missing" }
  /** Completed, failed or cancelled: nothing was written. */
  | { result: "final"; view: ResearchView<S, O>; outputs: Partial<Record<S, string>> }
  /** An earlier attempt checkpointed this stage's output: nothing was written; reuse it. */
  | { result: "checkpointed"; view: ResearchView<S, O>; outputs: Partial<Record<S, string>> }
  /**
   * Started: `record` is the stage's running record (its model is the one to call); `spendSubject`
   * whose daily spend the call counts towards (CreateResearchInput.spendSubject).
   */
  | { result: "applied"; view: ResearchView<S, O>; outputs: Partial<Record<S, string>>; record: StageRecord; spendSubject?: string };

const START_RESULTS = { 0: "final", 3: "checkpointed", 1: "applied" } as const;

/** A claim job's attempt begins (claimStarted). */
export type ClaimStart<S extends string = Stage, O extends string = OutputKey> =
  | { result: "missing" }
  /** The research made fewer claims than the job's index: the job is not one this research created. */
  | { result: "unknown_claim"; made: number }
  | { result: "final"; view: ResearchView<S, O> }
  /** Checked before (by an earlier attempt or another replica): nothing was written; do not pay for it again. */
  | { result: "checked"; view: ResearchView<S, O>; claim: ClaimRecord }
  | { result: "applied"; view: ResearchView<S, O>; outputs: Partial<Record<S, string>>; claim: ClaimRecord; spendSubject?: string };

/** What a model call cost, as a stage record keeps it. */
export interface StageCall {
  model: string;
  usage: TokenUsage;
  /** null when the model is unpriced. */
  costUsd: number | null;
  latencyMs: number;
}

/** One state change of a research record and the event it emits (UPDATE_SCRIPT). */
interface RecordUpdate {
  event: ResearchEventType;
  /** Event payload beside status, stage and time. */
  data?: Record<string, unknown>;
  /** Hash fields to set. */
  fields: Record<string, string>;
  /** The research's status once this applies (the event reports it; no read needed). */
  status: ResearchStatus;
  /** Apply only if this hash field is not set yet: first writer wins. */
  unlessSet?: string;
  /** A model call's cost to add to its spender's daily total, in the same step. */
  spend?: { subject: string; usd: number };
}

/** Costs to 1e-9 USD and latencies to 0.1 ms, as every record and event shows them. */
const readableCall = (call: StageCall): StageCall => ({
  model: call.model,
  usage: call.usage,
  costUsd: call.costUsd === null ? null : roundUsd(call.costUsd),
  latencyMs: roundMs(call.latencyMs),
});

/** A claim record with costs to 1e-9 USD and latency to 0.1 ms, as every record and event shows them. */
const readableClaim = (claim: ClaimRecord): ClaimRecord => ({
  ...claim,
  ...(claim.costUsd !== undefined ? { costUsd: claim.costUsd === null ? null : roundUsd(claim.costUsd) } : {}),
  ...(claim.retryCostUsd !== undefined ? { retryCostUsd: roundUsd(claim.retryCostUsd) } : {}),
  ...(claim.latencyMs !== undefined ? { latencyMs: roundMs(claim.latencyMs) } : {}),
});

/** What ResearchStore.list filters by. */
export interface ResearchListQuery {
  status?: ResearchStatus;
  /** createdAt, epoch ms, inclusive. */
  since?: number;
  /** createdAt, epoch ms, inclusive. */
  until?: number;
  limit?: number;
  /** nextCursor of the previous page. */
  cursor?: string;
  /** Only the researches this API key id created (a member's list). */
  owner?: string;
}

/** A research as a list shows it: the view without its stage outputs. */
export type ResearchSummary<S extends string = Stage> = Omit<ResearchView<S, string>, "result" | "partialResult">;

export interface ResearchListPage<S extends string = Stage> {
  researches: ResearchSummary<S>[];
  /** Present when more researches may follow. */
  nextCursor?: string;
}

/** A list cursor that cannot be decoded (the api answers 400 naming `cursor`). */
export class InvalidCursorError extends Error {
  override readonly name = "InvalidCursorError";
  constructor(message = "cursor is not valid; pass back nextCursor unchanged") {
    super(message);
  }
}

/** Most index entries one list call examines (a page may be short, with a cursor, past it). */
const LIST_MAX_SCAN = 5_000;

/** The position after which the next page starts: createdAt score and id of its last entry. */
interface ListCursor {
  k: number;
  i: string;
}

const encodeListCursor = (c: ListCursor) => Buffer.from(JSON.stringify(c)).toString("base64url");

function decodeListCursor(text: string): ListCursor {
  let c: unknown;
  try {
    c = JSON.parse(Buffer.from(text, "base64url").toString("utf8"));
  } catch {
    throw new InvalidCursorError();
  }
  const ok = typeof c === "object" && c !== null && Number.isFinite((c as ListCursor).k) && typeof (c as ListCursor).i === "string";
  if (!ok) throw new InvalidCursorError();
  return c as ListCursor;
}

/** Everything the api and the stage workers do to a research record goes through here. */
export class ResearchStore<S extends string = Stage, O extends string = OutputKey> {
  readonly prefix: string;
  readonly pipeline: Pipeline<S, O>;
  private readonly ttl: number;

  constructor(
    private readonly redis: RedisClient,
    opts: ResearchStoreOptionsFor<S, O> = {},
  ) {
    this.prefix = opts.prefix ?? DEFAULT_RESEARCH_PREFIX;
    this.pipeline = opts.pipeline ?? (RESEARCH_PIPELINE as unknown as Pipeline<S, O>);
    this.ttl = opts.ttlSeconds ?? 7 * 24 * 3600;
    // EVALSHA with a fallback to EVAL: the script text is not resent on every update.
    const withIndexes = 2 + indexKeyList(this.prefix, 0).length; // record, events, indexes
    redis.defineCommand("tracelaneResearchCreate", { numberOfKeys: withIndexes + 1, lua: CREATE_SCRIPT }); // + owner index
    redis.defineCommand("tracelaneResearchUpdate", { numberOfKeys: withIndexes + 1, lua: UPDATE_SCRIPT }); // + daily spend
    redis.defineCommand("tracelaneResearchStartStage", { numberOfKeys: withIndexes, lua: START_STAGE_SCRIPT });
    redis.defineCommand("tracelaneResearchStageRetrying", { numberOfKeys: withIndexes, lua: STAGE_RETRYING_SCRIPT });
    redis.defineCommand("tracelaneResearchFail", { numberOfKeys: withIndexes, lua: FAIL_SCRIPT });
    redis.defineCommand("tracelaneResearchCancel", { numberOfKeys: withIndexes, lua: CANCEL_SCRIPT });
    redis.defineCommand("tracelaneResearchStageCallAfterCancel", { numberOfKeys: 2, lua: STAGE_CALL_AFTER_CANCEL_SCRIPT });
    redis.defineCommand("tracelaneResearchClaimAfterCancel", { numberOfKeys: 2, lua: CLAIM_AFTER_CANCEL_SCRIPT });
    redis.defineCommand("tracelaneResearchStageWasted", { numberOfKeys: 2, lua: STAGE_WASTED_SCRIPT });
    redis.defineCommand("tracelaneResearchReprice", { numberOfKeys: 1, lua: REPRICE_SCRIPT });
  }

  private get scripts() {
    return this.redis as unknown as {
      tracelaneResearchCreate(...args: Array<string | number>): Promise<string>;
      tracelaneResearchUpdate(...args: Array<string | number>): Promise<number>;
      tracelaneResearchStartStage(...args: Array<string | number>): Promise<[number, string[]?]>;
      tracelaneResearchStageRetrying(...args: Array<string | number>): Promise<number>;
      tracelaneResearchFail(...args: Array<string | number>): Promise<number>;
      tracelaneResearchCancel(...args: Array<string | number>): Promise<number>;
      tracelaneResearchStageCallAfterCancel(...args: Array<string | number>): Promise<number>;
      tracelaneResearchClaimAfterCancel(...args: Array<string | number>): Promise<number>;
      tracelaneResearchStageWasted(...args: Array<string | number>): Promise<number>;
      tracelaneResearchReprice(...args: Array<string | number>): Promise<number>;
    };
  }

  /** The index keys every transition of research `id` keeps: those of its partition (indexKeyList). */
  private indexKeys(id: string): string[] {
    return indexKeyList(this.prefix, researchPartition(id));
  }

  /** Today's spend key of `subject` in research `id`'s partition, charged by the script that records the call. */
  private spendKey(id: string, subject: string): string {
    return dailySpendKey(this.prefix, subject, spendDay(), researchPartition(id));
  }

  /**
   * Create the record, once. An Idempotency-Key is claimed first (SET NX GET: one command answers whether it was
   * free and, if not, for which research and body); the record, its event and its partition's indexes are then
   * written by one script, which writes nothing if the record exists. A crash between the two leaves a claimed
   * key without a record: the replay finds it and creates that research then, so nothing is lost or doubled.
   */
  async create(input: CreateResearchInput): Promise<CreateResult> {
    const fingerprint = requestFingerprint(input.query, input.options);
    let id = input.id;
    if (input.idempotencyKey) {
      const idem = this.idempotencyKeyOf(input.owner, input.idempotencyKey);
      const bound = (await this.redis.set(idem, `${id}|${fingerprint}`, "EX", this.ttl, "NX", "GET")) as string | null;
      if (bound !== null) {
        const [existingId = "", existingFingerprint] = bound.split("|");
        if (existingFingerprint !== fingerprint) return { outcome: "conflict", id: existingId };
        if ((await this.status(existingId)) !== undefined) return { outcome: "existing", id: existingId };
        id = existingId; // claimed by a try that died before writing the record: finish it
      }
    }
    const keys = researchKeys(this.prefix, id);
    const now = new Date().toISOString();
    const first = this.pipeline.first;
    const stages = emptyStages(this.pipeline);
    stages[first].status = "queued";
    const fields: Record<string, string> = {
      id,
      status: "queued",
      stage: first,
      query: input.query,
      options: JSON.stringify(input.options),
      createdAt: now,
      updatedAt: now,
      traceId: input.traceId ?? "",
      ...(input.owner ? { owner: input.owner } : {}),
      ...(input.spendSubject ? { spendSubject: input.spendSubject } : {}),
      ...Object.fromEntries(Object.entries(stages).map(([s, rec]) => [`stage.${s}`, JSON.stringify(rec)])),
    };
    const event = JSON.stringify({ status: "queued", stage: first, at: now });
    const result = await this.scripts.tracelaneResearchCreate(
      keys.record,
      keys.events,
      input.owner ? ownerIndexKey(this.prefix, input.owner, researchPartition(id)) : keys.record,
      ...this.indexKeys(id),
      this.ttl,
      id,
      event,
      Date.parse(now),
      ...Object.entries(fields).flat(),
    );
    // A trace id already claimed by an earlier research keeps that research as its owner (NX).
    if (input.traceId) {
      const owner = JSON.stringify({ researchId: id, ...(input.owner ? { owner: input.owner } : {}) });
      await this.redis.set(traceOwnerKey(this.prefix, input.traceId), owner, "EX", this.ttl, "NX");
    }
    return { outcome: result === "created" ? "created" : "existing", id };
  }

  /** Idempotency keys are scoped by owner: two API keys sending the same Idempotency-Key get two researches. */
  private idempotencyKeyOf(owner: string | undefined, key: string): string {
    return idempotencyKey(this.prefix, owner ? `${owner}.${key}` : key);
  }

  /**
   * What create() would answer for an Idempotency-Key used before ("existing", or "conflict" for another
   * body), without writing anything; undefined for a key not used yet. For refusing new work (a full
   * pipeline) while still answering a replay.
   */
  async findIdempotent(
    input: Pick<CreateResearchInput, "owner" | "query" | "options"> & { idempotencyKey: string },
  ): Promise<Exclude<CreateResult, { outcome: "created" }> | undefined> {
    const bound = await this.redis.get(this.idempotencyKeyOf(input.owner, input.idempotencyKey));
    if (bound === null) return undefined;
    const [id = "", fingerprint] = bound.split("|");
    return { outcome: fingerprint === requestFingerprint(input.query, input.options) ? "existing" : "conflict", id };
  }

  /**
   * Show research `id`'s costs as re-priced from its trace (the trace-collector's reprice): its stage rows, claim
   * rows and totals then read `costs`. Only a finished research is re-priced (a running one is still being charged:
   * "running"). The record's own figures and the daily spend counters are left as charged: the spend cap counts what
   * was paid for when it was called, and a reprice changes no past day's spend. Writing the same costs again
   * changes nothing ("unchanged").
   */
  async applyRepricedCosts(id: string, costs: RepricedCosts): Promise<"applied" | "unchanged" | "running" | "missing"> {
    const r = await this.scripts.tracelaneResearchReprice(researchKeys(this.prefix, id).record, JSON.stringify(costs));
    return r === 3 ? "applied" : r === 2 ? "unchanged" : r === 1 ? "running" : "missing";
  }

  /** The view plus the raw stage outputs, in one round trip (what a stage worker needs). */
  async load(id: string): Promise<{ view: ResearchView<S, O>; outputs: Partial<Record<S, string>> } | undefined> {
    const hash = await this.redis.hgetall(researchKeys(this.prefix, id).record);
    if (!hash.status) return undefined;
    const outputs = stageOutputs(hash, this.pipeline);
    return { view: toView(hash, outputs, this.pipeline), outputs };
  }

  async get(id: string): Promise<ResearchView<S, O> | undefined> {
    return (await this.load(id))?.view;
  }

  /** Whether the research exists and which API key id created it (undefined: none, it was created without keys). */
  async ownerOf(id: string): Promise<{ owner: string | undefined } | undefined> {
    const [status, owner] = await this.redis.hmget(researchKeys(this.prefix, id).record, "status", "owner");
    return status ? { owner: owner || undefined } : undefined;
  }

  /**
   * Per trace id: the research it belongs to and that research's owner (undefined for a trace no
   * research claimed: a foreign OTLP trace, or one whose research expired). One MGET.
   */
  async traceOwners(traceIds: string[]): Promise<({ researchId: string; owner: string | undefined } | undefined)[]> {
    if (traceIds.length === 0) return [];
    // One GET per trace in one batch, not an MGET: on a Cluster the trace ids' keys live in many slots.
    const replies = await batch(this.redis, (b) => {
      for (const t of traceIds) b.get(traceOwnerKey(this.prefix, t));
    });
    return replies.map(([err, v]) => {
      if (err) throw err;
      if (typeof v !== "string") return undefined;
      const parsed = JSON.parse(v) as { researchId: string; owner?: string };
      return { researchId: parsed.researchId, owner: parsed.owner };
    });
  }

  async status(id: string): Promise<ResearchStatus | undefined> {
    const s = await this.redis.hget(researchKeys(this.prefix, id).record, "status");
    return (s ?? undefined) as ResearchStatus | undefined;
  }

  async stageRecord(id: string, stage: S): Promise<StageRecord> {
    const raw = await this.redis.hget(researchKeys(this.prefix, id).record, `stage.${stage}`);
    return raw ? (JSON.parse(raw) as StageRecord) : { status: "pending", attempts: 0 };
  }

  /**
   * A stage attempt begins: in one round trip, read the research and, unless it is final or the
   * stage's output is already checkpointed, mark the stage running. `model` is the worker's; the
   * research's own choice for the stage (options.models) wins.
   */
  async stageStarted(id: string, stage: S, info: { model: string; attempt: number; queueWaitMs: number }): Promise<StageStart<S, O>> {
    const keys = researchKeys(this.prefix, id);
    const [code, pairs] = await this.scripts.tracelaneResearchStartStage(
      keys.record,
      keys.events,
      ...this.indexKeys(id),
      this.ttl,
      stage,
      info.model,
      info.attempt,
      info.queueWaitMs,
      new Date().toISOString(),
      id,
    );
    if (code === -1 || !pairs) return { result: "missing" };
    const hash: Record<string, string> = {};
    for (let i = 0; i + 1 < pairs.length; i += 2) hash[pairs[i]!] = pairs[i + 1]!;
    const outputs = stageOutputs(hash, this.pipeline);
    const view = toView(hash, outputs, this.pipeline);
    const result = START_RESULTS[code as keyof typeof START_RESULTS];
    if (result !== "applied") return { result, view, outputs };
    return { result, view, outputs, record: view.stages[stage], ...(hash.spendSubject ? { spendSubject: hash.spendSubject } : {}) };
  }

  /**
   * Checkpoint a stage's output and usage. Written before the next stage is enqueued. The call's
   * cost goes on `spendSubject`'s daily spend in the same atomic step (once, by the first writer).
   */
  async stageCompleted(
    id: string,
    stage: S,
    info: StageCall & {
      output: string;
      next: S | undefined;
      spendSubject?: string | undefined;
      /** The claims the stage's answer made, for the fan-out stage after it (at most MAX_CLAIMS_LIMIT). */
      claims?: string[] | undefined;
      /** Of costUsd, what calls whose answer was thrown away cost. */
      retryCostUsd?: number | undefined;
    },
    known?: { stage: StageRecord; next?: StageRecord | undefined },
  ): Promise<UpdateResult> {
    const prev = known?.stage ?? (await this.stageRecord(id, stage));
    const now = new Date().toISOString();
    const call = readableCall(info);
    const rec: StageRecord = {
      ...prev,
      status: "completed",
      finishedAt: now,
      ...call,
      ...(info.retryCostUsd ? { retryCostUsd: roundUsd(info.retryCostUsd) } : {}),
    };
    const fields: Record<string, string> = {
      [`output.${stage}`]: info.output,
      [`stage.${stage}`]: JSON.stringify(rec),
      ...(info.claims ? { [CLAIMS_FIELD]: JSON.stringify(info.claims.slice(0, MAX_CLAIMS)) } : {}),
    };
    if (info.next) {
      const nextRec = known?.next ?? (await this.stageRecord(id, info.next));
      fields[`stage.${info.next}`] = JSON.stringify({ ...nextRec, status: nextRec.status === "pending" ? "queued" : nextRec.status });
      fields.stage = info.next;
    }
    // First writer wins: when a job's lock expired mid-call (a long Redis outage, a paused
    // process), two attempts can finish the same stage; only one checkpoint and event count.
    return this.update(id, {
      event: "stage.completed",
      data: { stage, ...call },
      fields,
      status: "running",
      unlessSet: `output.${stage}`,
      ...(info.spendSubject && call.costUsd ? { spend: { subject: info.spendSubject, usd: call.costUsd } } : {}),
    });
  }

  /**
   * A claim job's attempt begins: read the research and, unless it is final or the claim is already checked,
   * mark the claim running (attempt `attempt`, first start kept) with a `claim.started` event.
   */
  async claimStarted(id: string, stage: S, index: number, info: { model: string; attempt: number }): Promise<ClaimStart<S, O>> {
    const hash = await this.redis.hgetall(researchKeys(this.prefix, id).record);
    if (!hash.status) return { result: "missing" };
    const outputs = stageOutputs(hash, this.pipeline);
    const view = toView(hash, outputs, this.pipeline);
    if (view.status === "completed" || view.status === "failed" || view.status === "cancelled") return { result: "final", view };
    const prev = claimsOf(hash, stage)[index];
    if (!prev) return { result: "unknown_claim", made: claimsOf(hash, stage).length };
    if (hash[claimDoneField(stage, index)]) return { result: "checked", view, claim: prev };
    const { error: _lastError, ...rest } = prev;
    const claim: ClaimRecord = {
      ...rest,
      status: "running",
      model: info.model,
      attempts: info.attempt,
      startedAt: prev.startedAt ?? new Date().toISOString(),
    };
    const res = await this.update(id, {
      event: "claim.started",
      data: { stage, claim: index, attempt: info.attempt, model: info.model },
      fields: { [claimField(stage, index)]: JSON.stringify(claim) },
      status: "running",
      unlessSet: claimDoneField(stage, index),
    });
    if (res === "missing") return { result: "missing" };
    if (res === "final") return { result: "final", view };
    if (res === "duplicate") return { result: "checked", view, claim: prev };
    return { result: "applied", view, outputs, claim, ...(hash.spendSubject ? { spendSubject: hash.spendSubject } : {}) };
  }

  /**
   * A claim's check is final (a verdict, or `unverifiable` after its last attempt failed): first writer
   * wins, and `chargeUsd` (what this attempt's calls cost) goes on `spendSubject`'s daily spend in the same step.
   */
  async claimCompleted(
    id: string,
    stage: S,
    claim: ClaimRecord,
    charge: { usd: number | null; spendSubject?: string | undefined },
  ): Promise<UpdateResult> {
    const rec = readableClaim({ ...claim, finishedAt: new Date().toISOString() });
    const res = await this.update(id, {
      event: "claim.completed",
      data: {
        stage,
        claim: rec.index,
        claimStatus: rec.status,
        ...(rec.verdict ? { verdict: rec.verdict } : {}),
        costUsd: rec.costUsd ?? null,
        ...(rec.latencyMs !== undefined ? { latencyMs: rec.latencyMs } : {}),
      },
      fields: { [claimField(stage, rec.index)]: JSON.stringify(rec), [claimDoneField(stage, rec.index)]: "1" },
      status: "running",
      unlessSet: claimDoneField(stage, rec.index),
      ...(charge.spendSubject && charge.usd ? { spend: { subject: charge.spendSubject, usd: charge.usd } } : {}),
    });
    if (res !== "final") return res;
    // Cancelled while the claim was checked: its calls were made and paid for, so they still count.
    const keys = researchKeys(this.prefix, id);
    const spend = charge.spendSubject && charge.usd ? toNanoUsd(charge.usd) : 0;
    await this.scripts.tracelaneResearchClaimAfterCancel(
      keys.record,
      spend > 0 ? this.spendKey(id, charge.spendSubject!) : keys.record,
      this.ttl,
      claimField(stage, rec.index),
      claimDoneField(stage, rec.index),
      JSON.stringify(rec),
      new Date().toISOString(),
      spend,
      DAILY_SPEND_TTL_SECONDS,
    );
    return res;
  }

  /** A claim attempt failed and will be retried: its error and what its calls cost (added to the claim's retry cost). */
  async claimRetrying(
    id: string,
    stage: S,
    claim: ClaimRecord,
    failed: {
      error: { type: string; message: string };
      spentUsd: number;
      usage: TokenUsage;
      spendSubject?: string | undefined;
    },
  ): Promise<UpdateResult> {
    const spent = roundUsd(failed.spentUsd);
    const rec = readableClaim({
      ...claim,
      status: "queued",
      error: failed.error,
      usage: addUsage(claim.usage, failed.usage),
      costUsd: addCostUsd(claim.costUsd, spent),
      retryCostUsd: addUsd(claim.retryCostUsd ?? 0, spent),
    });
    return this.update(id, {
      event: "claim.retrying",
      data: { stage, claim: rec.index, attempt: rec.attempts, error: failed.error },
      fields: { [claimField(stage, rec.index)]: JSON.stringify(rec) },
      status: "running",
      unlessSet: claimDoneField(stage, rec.index),
      ...(failed.spendSubject && spent > 0 ? { spend: { subject: failed.spendSubject, usd: spent } } : {}),
    });
  }

  /** An attempt failed and BullMQ will retry the stage: one atomic step, like stageStarted. */
  async stageRetrying(id: string, stage: S, retry: { error: { type: string; message: string }; attempt: number }): Promise<UpdateResult> {
    const keys = researchKeys(this.prefix, id);
    const res = await this.scripts.tracelaneResearchStageRetrying(
      keys.record,
      keys.events,
      ...this.indexKeys(id),
      this.ttl,
      id,
      stage,
      JSON.stringify(retry.error),
      retry.attempt,
      new Date().toISOString(),
    );
    return UPDATE_RESULTS[res] ?? "missing";
  }

  async completed(id: string): Promise<UpdateResult> {
    const now = new Date().toISOString();
    return this.update(id, {
      event: "research.completed",
      fields: { status: "completed", finishedAt: now, stage: "" },
      status: "completed",
    });
  }

  /** The research fails; the stage the error names is marked failed in the same atomic step. */
  async failed(id: string, error: ResearchError<S>): Promise<UpdateResult> {
    const keys = researchKeys(this.prefix, id);
    const res = await this.scripts.tracelaneResearchFail(
      keys.record,
      keys.events,
      ...this.indexKeys(id),
      this.ttl,
      id,
      JSON.stringify(error),
      new Date().toISOString(),
    );
    return UPDATE_RESULTS[res] ?? "missing";
  }

  /**
   * Cancel unless already final, atomically: a running stage becomes `cancelled` (its worker then
   * records the call it was making, stageCallAfterCancel), stages not started become `skipped`.
   */
  async cancel(id: string): Promise<UpdateResult> {
    const keys = researchKeys(this.prefix, id);
    const res = await this.scripts.tracelaneResearchCancel(
      keys.record,
      keys.events,
      ...this.indexKeys(id),
      this.ttl,
      id,
      new Date().toISOString(),
      ...this.pipeline.names,
    );
    return UPDATE_RESULTS[res] ?? "missing";
  }

  /**
   * A model call finished after its research was cancelled: its usage and cost go on the cancelled
   * stage, so the research's totals count what was spent. "final" when the stage was not cancelled
   * while running (nothing written), "duplicate" when a call was already recorded.
   */
  async stageCallAfterCancel(id: string, stage: S, call: StageCall & { spendSubject?: string | undefined }): Promise<UpdateResult> {
    const record = researchKeys(this.prefix, id).record;
    const readable = readableCall(call);
    const charge = call.spendSubject && readable.costUsd ? toNanoUsd(readable.costUsd) : 0;
    const res = await this.scripts.tracelaneResearchStageCallAfterCancel(
      record,
      charge > 0 ? this.spendKey(id, call.spendSubject!) : record,
      this.ttl,
      stage,
      JSON.stringify(readable),
      new Date().toISOString(),
      charge,
      DAILY_SPEND_TTL_SECONDS,
    );
    return UPDATE_RESULTS[res] ?? "missing";
  }

  /**
   * Researches still `queued` that were created before `olderThanMs` ago: their first job may
   * have been lost (a crash between create and enqueue). Expired records are dropped from the indexes.
   */
  async queuedOlderThan(olderThanMs: number, limit = 100): Promise<string[]> {
    const queued = ALL_PARTITIONS.map((k) => researchIndexKeys(this.prefix, k).byStatus.queued);
    const replies = await batch(this.redis, (b) => {
      for (const key of queued) b.zrangebyscore(key, 0, Date.now() - olderThanMs, "LIMIT", 0, limit);
    });
    const out: string[] = [];
    for (const [i, [err, ids]] of replies.entries()) {
      if (err) throw err;
      for (const id of ids as string[]) {
        if (out.length >= limit) return out;
        const status = await this.status(id);
        if (status === "queued") out.push(id);
        else if (status === undefined) await this.forget([id]);
        else await this.redis.zrem(queued[i]!, id); // moved on without this index hearing of it
      }
    }
    return out;
  }

  /**
   * Researches newest first (by createdAt), optionally in one status and a createdAt window
   * (epoch ms, inclusive), `limit` (1-500, default 50) per page; pass `nextCursor` back as `cursor`
   * for the next page. Entries whose record expired are dropped from the indexes as they are met.
   * The index is read across its partitions as one (runtime's mergeDesc).
   */
  async list(query: ResearchListQuery = {}): Promise<ResearchListPage<S>> {
    const limit = Math.min(Math.max(Math.trunc(query.limit ?? 50), 1), 500);
    const cursor = query.cursor === undefined ? undefined : decodeListCursor(query.cursor);
    // An owner's own index (its status is checked per entry), else a status index, else every research.
    const keyOf = (k: number) => {
      if (query.owner !== undefined) return ownerIndexKey(this.prefix, query.owner, k);
      const indexes = researchIndexKeys(this.prefix, k);
      return query.status ? indexes.byStatus[query.status] : indexes.all;
    };
    const max = Math.min(query.until ?? Infinity, cursor?.k ?? Infinity);
    const min = query.since ?? -Infinity;
    const fields = ["status", "id", "stage", "query", "options", "createdAt", "updatedAt", "finishedAt", "traceId", "error", "owner"];
    fields.push(...this.pipeline.names.map((stage) => `stage.${stage}`));
    // What failed attempts paid for counts in a listed research's costs too.
    fields.push(...this.pipeline.names.flatMap((stage) => Object.values(wastedFields(stage))));
    // A fan-out stage's row sums its claims' costs, so a list reads them too (not the outputs).
    const fanOut = this.pipeline.fanOutStage;
    if (fanOut) fields.push(CLAIMS_FIELD, ...Array.from({ length: MAX_CLAIMS }, (_, i) => claimField(fanOut, i)));

    const items: { summary: ResearchSummary<S>; score: number }[] = [];
    const gone: string[] = [];
    const chunk = Math.min(limit + 1, 200);
    let scanned = 0;
    let lastScanned: ListCursor | undefined;
    scan: for await (const page of mergeDesc(this.redis, ALL_PARTITIONS.map(keyOf), { max, min }, { first: chunk, most: chunk })) {
      // Equal scores come in descending id order: the cursor's entry and those before it were on earlier pages.
      const entries = page.filter(({ id, score }) => !(cursor && score === cursor.k && id >= cursor.i));
      const replies = await batch(this.redis, (b) => {
        for (const e of entries) b.hmget(researchKeys(this.prefix, e.id).record, ...fields);
      });
      for (let i = 0; i < entries.length; i++) {
        const [err, values] = replies[i]!;
        if (err) throw err;
        const hash: Record<string, string> = {};
        (values as (string | null)[]).forEach((v, j) => {
          if (v !== null) hash[fields[j]!] = v;
        });
        scanned++;
        lastScanned = { k: entries[i]!.score, i: entries[i]!.id };
        if (!hash.status) gone.push(entries[i]!.id);
        else if ((!query.status || hash.status === query.status) && (query.owner === undefined || hash.owner === query.owner)) {
          const { result: _r, partialResult: _p, ...summary } = toView(hash, {}, this.pipeline);
          items.push({ summary, score: entries[i]!.score });
          if (items.length > limit) break scan;
        }
        if (scanned >= LIST_MAX_SCAN) break scan;
      }
    }
    await this.forget(gone, query.owner);
    if (items.length > limit) {
      const page = items.slice(0, limit);
      const last = page.at(-1)!;
      return { researches: page.map((it) => it.summary), nextCursor: encodeListCursor({ k: last.score, i: last.summary.id }) };
    }
    const researches = items.map((it) => it.summary);
    // Stopped at the scan bound: the next page resumes below the last entry examined.
    return scanned >= LIST_MAX_SCAN && lastScanned ? { researches, nextCursor: encodeListCursor(lastScanned) } : { researches };
  }

  /**
   * How many researches are in each status now (the api's /metrics gauge), from the status indexes:
   * one ZCOUNT per status and partition of the entries created within the record TTL (older ones have expired).
   */
  async countByStatus(): Promise<Record<ResearchStatus, number>> {
    const since = Date.now() - this.ttl * 1000;
    const replies = await batch(this.redis, (b) => {
      for (const k of ALL_PARTITIONS) {
        const indexes = researchIndexKeys(this.prefix, k);
        for (const status of RESEARCH_STATUSES) b.zcount(indexes.byStatus[status], since, "+inf");
      }
    });
    const counts = Object.fromEntries(RESEARCH_STATUSES.map((s) => [s, 0])) as Record<ResearchStatus, number>;
    replies.forEach(([err, n], i) => {
      if (err) throw err;
      counts[RESEARCH_STATUSES[i % RESEARCH_STATUSES.length]!] += Number(n);
    });
    return counts;
  }

  /** Drop researches whose record expired from every index of their partition (and their owner's index there). */
  private async forget(ids: string[], owner?: string): Promise<void> {
    if (ids.length === 0) return;
    await batch(this.redis, (b) => {
      for (const id of ids) {
        const k = researchPartition(id);
        for (const key of indexKeyList(this.prefix, k)) b.zrem(key, id);
        if (owner !== undefined) b.zrem(ownerIndexKey(this.prefix, owner, k), id);
      }
    });
  }

  /**
   * An attempt of `stage` paid for calls whose answers it threw away and then failed (e.g. two answers that did
   * not match the stage's schema): their tokens and cost still count, in the stage's usage, cost and retry cost
   * and on the spender's day. Added, never overwritten, so every attempt's spend is kept.
   */
  async stageWasted(
    id: string,
    stage: S,
    spent: { usage: TokenUsage; costUsd: number | null; spendSubject?: string | undefined },
  ): Promise<void> {
    const keys = researchKeys(this.prefix, id);
    const f = wastedFields(stage);
    const nano = spent.costUsd ? toNanoUsd(spent.costUsd) : 0;
    await this.scripts.tracelaneResearchStageWasted(
      keys.record,
      spent.spendSubject && nano > 0 ? this.spendKey(id, spent.spendSubject) : keys.record,
      this.ttl,
      f.nanoUsd,
      nano,
      f.inputTokens,
      spent.usage.inputTokens,
      f.outputTokens,
      spent.usage.outputTokens,
      f.cachedInputTokens,
      spent.usage.cachedInputTokens ?? 0,
      DAILY_SPEND_TTL_SECONDS,
    );
  }

  /**
   * A piece of a streamed stage's answer, as `<stage>.delta` (e.g. synthesis.delta) on the research's event
   * stream, so a reader watches the report being written. `attempt` changes when a failed call is sent again
   * (its text starts over). Nothing on the record: the output is checkpointed whole when the stage completes.
   */
  async stageDelta(id: string, stage: S, text: string, attempt: number): Promise<void> {
    const keys = researchKeys(this.prefix, id);
    const data = JSON.stringify({ status: "running", stage, at: new Date().toISOString(), text, attempt });
    await this.redis
      .multi()
      .xadd(keys.events, "MAXLEN", "~", "1000", "*", "type", `${stage}.delta`, "data", data)
      .expire(keys.events, this.ttl)
      .exec();
  }

  /** Events after `afterId` (exclusive; "0" for all), oldest first. */
  async events(id: string, afterId = "0", count = 100): Promise<ResearchEvent<S>[]> {
    const key = researchKeys(this.prefix, id).events;
    const start = afterId === "0" ? "-" : `(${afterId}`;
    const entries = await this.redis.xrange(key, start, "+", "COUNT", count);
    return entries.map(([streamId, fields]) => {
      const map: Record<string, string> = {};
      for (let i = 0; i + 1 < fields.length; i += 2) map[fields[i]!] = fields[i + 1]!;
      const data = JSON.parse(map.data ?? "{}") as Record<string, unknown> & { status?: ResearchStatus; stage?: S | null; at?: string };
      const { status, stage, at, ...rest } = data;
      return {
        id: streamId,
        type: map.type as ResearchEventType<S>,
        researchId: id,
        status: status ?? "queued",
        stage: stage ?? null,
        at: at ?? new Date(Number(streamId.split("-")[0])).toISOString(),
        ...(Object.keys(rest).length ? { data: rest } : {}),
      };
    });
  }

  /** What `subject` spent on model calls on the UTC day of `at` (default today), in USD. */
  async spentOn(subject: string, at: Date = new Date()): Promise<number> {
    const day = spendDay(at);
    const replies = await batch(this.redis, (b) => {
      for (const k of ALL_PARTITIONS) b.get(dailySpendKey(this.prefix, subject, day, k));
    });
    let nano = 0;
    for (const [err, v] of replies) {
      if (err) throw err;
      if (typeof v === "string") nano += Number(v);
    }
    return fromNanoUsd(nano);
  }

  private async update(id: string, change: RecordUpdate): Promise<UpdateResult> {
    const keys = researchKeys(this.prefix, id);
    const charge = change.spend ? toNanoUsd(change.spend.usd) : 0;
    const now = new Date().toISOString();
    const data = change.data ?? {};
    const stage = (change.fields.stage ?? data.stage ?? null) || null;
    // An event's own data (the stage it is about, a claim's fields) goes over the defaults, but never over the research's status.
    const event = JSON.stringify({ stage, at: now, ...data, status: change.status });
    const res = await this.scripts.tracelaneResearchUpdate(
      keys.record,
      keys.events,
      ...this.indexKeys(id),
      charge > 0 ? this.spendKey(id, change.spend!.subject) : keys.record,
      this.ttl,
      change.event,
      event,
      id,
      change.unlessSet ?? "",
      charge,
      DAILY_SPEND_TTL_SECONDS,
      ...Object.entries({ ...change.fields, updatedAt: now }).flat(),
    );
    return UPDATE_RESULTS[res] ?? "missing";
  }
}
