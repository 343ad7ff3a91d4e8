import { createHash } from "node:crypto";
import type { Redis } from "ioredis";
import type { Stage } from "@tracelane/queue-contract";
import { CREATE_SCRIPT, START_STAGE_SCRIPT, UPDATE_SCRIPT } from "./lua.js";
import { DEFAULT_RESEARCH_PREFIX, idempotencyKey, queuedIndexKey, researchKeys } from "./keys.js";
import {
  type ResearchError,
  type ResearchEvent,
  type ResearchEventType,
  type ResearchOptions,
  type ResearchStatus,
  type ResearchView,
  type StageRecord,
  emptyStages,
} from "./schemas.js";
import { stageOutputs, toView } from "./view.js";

export interface ResearchStoreOptions {
  prefix?: string;
  /** How long a research record and its events live after the last change. */
  ttlSeconds?: number;
}

export interface CreateResearchInput {
  id: string;
  query: string;
  options: ResearchOptions;
  traceId: string | null;
  idempotencyKey?: string;
}

export type CreateResult =
  | { outcome: "created"; id: string }
  | { outcome: "existing"; id: string }
  /** The idempotency key was used before for a different request body. */
  | { outcome: "conflict"; id: string };

/** "duplicate": another attempt already checkpointed this stage (its output stays). */
export type UpdateResult = "applied" | "final" | "missing" | "duplicate";

const UPDATE_RESULTS: Record<number, UpdateResult> = { 1: "applied", 0: "final", [-1]: "missing", 2: "duplicate" };

/** The research as a stage attempt found it, and whether the attempt started. */
export type StageStart =
  | { result: "missing" }
  /** Completed, failed or cancelled: nothing was written. */
  | { result: "final"; view: ResearchView; outputs: Partial<Record<Stage, string>> }
  /** An earlier attempt checkpointed this stage's output: nothing was written; reuse it. */
  | { result: "checkpointed"; view: ResearchView; outputs: Partial<Record<Stage, string>> }
  /** Started: `record` is the stage's running record (its model is the one to call). */
  | { result: "applied"; view: ResearchView; outputs: Partial<Record<Stage, string>>; record: StageRecord };

const START_RESULTS = { 0: "final", 3: "checkpointed", 1: "applied" } as const;

/** Everything the api and the stage workers do to a research record goes through here. */
export class ResearchStore {
  readonly prefix: string;
  private readonly ttl: number;

  constructor(
    private readonly redis: Redis,
    opts: ResearchStoreOptions = {},
  ) {
    this.prefix = opts.prefix ?? DEFAULT_RESEARCH_PREFIX;
    this.ttl = opts.ttlSeconds ?? 7 * 24 * 3600;
    // EVALSHA with a fallback to EVAL: the script text is not resent on every update.
    redis.defineCommand("tracelaneResearchCreate", { numberOfKeys: 4, lua: CREATE_SCRIPT });
    redis.defineCommand("tracelaneResearchUpdate", { numberOfKeys: 3, lua: UPDATE_SCRIPT });
    redis.defineCommand("tracelaneResearchStartStage", { numberOfKeys: 3, lua: START_STAGE_SCRIPT });
  }

  private get scripts() {
    return this.redis as unknown as {
      tracelaneResearchCreate(...args: Array<string | number>): Promise<string>;
      tracelaneResearchUpdate(...args: Array<string | number>): Promise<number>;
      tracelaneResearchStartStage(...args: Array<string | number>): Promise<[number, string[]?]>;
    };
  }

  async create(input: CreateResearchInput): Promise<CreateResult> {
    const keys = researchKeys(this.prefix, input.id);
    const idem = input.idempotencyKey ? idempotencyKey(this.prefix, input.idempotencyKey) : keys.record;
    const fingerprint = createHash("sha256")
      .update(JSON.stringify([input.query, input.options]))
      .digest("hex")
      .slice(0, 32);
    const now = new Date().toISOString();
    const stages = emptyStages();
    stages.analysis.status = "queued";
    const fields: Record<string, string> = {
      id: input.id,
      status: "queued",
      stage: "analysis",
      query: input.query,
      options: JSON.stringify(input.options),
      createdAt: now,
      updatedAt: now,
      traceId: input.traceId ?? "",
      ...Object.fromEntries(Object.entries(stages).map(([s, rec]) => [`stage.${s}`, JSON.stringify(rec)])),
    };
    const event = JSON.stringify({ status: "queued", stage: "analysis", at: now });
    const result = await this.scripts.tracelaneResearchCreate(
      keys.record,
      keys.events,
      idem,
      queuedIndexKey(this.prefix),
      this.ttl,
      input.id,
      fingerprint,
      event,
      Date.parse(now),
      ...Object.entries(fields).flat(),
    );
    if (result === "created") return { outcome: "created", id: input.id };
    const [existingId = "", existingFingerprint] = result.split("|");
    return { outcome: existingFingerprint === fingerprint ? "existing" : "conflict", id: existingId };
  }

  /** The view plus the raw stage outputs, in one round trip (what a stage worker needs). */
  async load(id: string): Promise<{ view: ResearchView; outputs: Partial<Record<Stage, string>> } | undefined> {
    const hash = await this.redis.hgetall(researchKeys(this.prefix, id).record);
    if (!hash.status) return undefined;
    const outputs = stageOutputs(hash);
    return { view: toView(hash, outputs), outputs };
  }

  async get(id: string): Promise<ResearchView | undefined> {
    return (await this.load(id))?.view;
  }

  async status(id: string): Promise<ResearchStatus | undefined> {
    const s = await this.redis.hget(researchKeys(this.prefix, id).record, "status");
    return (s ?? undefined) as ResearchStatus | undefined;
  }

  async stageRecord(id: string, stage: Stage): Promise<StageRecord> {
    const raw = await this.redis.hget(researchKeys(this.prefix, id).record, `stage.${stage}`);
    return raw ? (JSON.parse(raw) as StageRecord) : { status: "pending", attempts: 0 };
  }

  /**
   * A stage attempt begins: in one round trip, read the research and, unless it is final or the
   * stage's output is already checkpointed, mark the stage running. `model` is the worker's; the
   * research's own choice for the stage (options.models) wins.
   */
  async stageStarted(id: string, stage: Stage, info: { model: string; attempt: number; queueWaitMs: number }): Promise<StageStart> {
    const keys = researchKeys(this.prefix, id);
    const [code, pairs] = await this.scripts.tracelaneResearchStartStage(
      keys.record,
      keys.events,
      queuedIndexKey(this.prefix),
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
    const outputs = stageOutputs(hash);
    const view = toView(hash, outputs);
    const result = START_RESULTS[code as keyof typeof START_RESULTS];
    return result === "applied" ? { result, view, outputs, record: view.stages[stage] } : { result, view, outputs };
  }

  /** Checkpoint a stage's output and usage. Written before the next stage is enqueued. */
  async stageCompleted(
    id: string,
    stage: Stage,
    info: {
      output: string;
      model: string;
      usage: { inputTokens: number; outputTokens: number };
      costUsd: number | null;
      latencyMs: number;
      next: Stage | undefined;
    },
    known?: { stage: StageRecord; next?: StageRecord | undefined },
  ): Promise<UpdateResult> {
    const prev = known?.stage ?? (await this.stageRecord(id, stage));
    const now = new Date().toISOString();
    const rec: StageRecord = {
      ...prev,
      status: "completed",
      model: info.model,
      finishedAt: now,
      latencyMs: info.latencyMs,
      usage: info.usage,
      costUsd: info.costUsd,
    };
    const fields: Record<string, string> = {
      [`output.${stage}`]: info.output,
      [`stage.${stage}`]: JSON.stringify(rec),
    };
    if (info.next) {
      const nextRec = known?.next ?? (await this.stageRecord(id, info.next));
      fields[`stage.${info.next}`] = JSON.stringify({ ...nextRec, status: nextRec.status === "pending" ? "queued" : nextRec.status });
      fields.stage = info.next;
    }
    // First writer wins: when a job's lock expired mid-call (a long Redis outage, a paused
    // process), two attempts can finish the same stage; only one checkpoint and event count.
    return this.update(
      id,
      "stage.completed",
      { stage, model: info.model, usage: info.usage, costUsd: info.costUsd, latencyMs: info.latencyMs },
      fields,
      undefined,
      "running",
      `output.${stage}`,
    );
  }

  /** An attempt failed and BullMQ will retry the stage. */
  async stageRetrying(id: string, stage: Stage, error: { type: string; message: string }, attempt: number): Promise<UpdateResult> {
    const prev = await this.stageRecord(id, stage);
    return this.update(id, "stage.retrying", { stage, attempt, error }, {
      [`stage.${stage}`]: JSON.stringify({ ...prev, status: "queued", error } satisfies StageRecord),
    });
  }

  async completed(id: string): Promise<UpdateResult> {
    const now = new Date().toISOString();
    return this.update(id, "research.completed", {}, { status: "completed", finishedAt: now, stage: "" }, "completed");
  }

  async failed(id: string, error: ResearchError): Promise<UpdateResult> {
    const now = new Date().toISOString();
    const fields: Record<string, string> = { status: "failed", finishedAt: now, error: JSON.stringify(error) };
    if (error.stage) {
      const prev = await this.stageRecord(id, error.stage);
      fields[`stage.${error.stage}`] = JSON.stringify({
        ...prev,
        status: "failed",
        finishedAt: now,
        error: { type: error.type, message: error.message },
      } satisfies StageRecord);
    }
    return this.update(id, "research.failed", { error }, fields, "failed");
  }

  /** Cancel unless already final; stages not yet finished are marked skipped. */
  async cancel(id: string): Promise<UpdateResult> {
    const view = await this.get(id);
    if (!view) return "missing";
    const now = new Date().toISOString();
    const fields: Record<string, string> = { status: "cancelled", finishedAt: now };
    for (const [stage, rec] of Object.entries(view.stages)) {
      if (rec.status !== "completed" && rec.status !== "failed") {
        fields[`stage.${stage}`] = JSON.stringify({ ...rec, status: "skipped" } satisfies StageRecord);
      }
    }
    return this.update(id, "research.cancelled", {}, fields, "cancelled");
  }

  /**
   * Researches still `queued` that were created before `olderThanMs` ago: their first job may
   * have been lost (a crash between create and enqueue). Expired records are dropped from the index.
   */
  async queuedOlderThan(olderThanMs: number, limit = 100): Promise<string[]> {
    const key = queuedIndexKey(this.prefix);
    const ids = await this.redis.zrangebyscore(key, 0, Date.now() - olderThanMs, "LIMIT", 0, limit);
    const out: string[] = [];
    for (const id of ids) {
      const status = await this.status(id);
      if (status === "queued") out.push(id);
      else await this.redis.zrem(key, id); // expired, or moved on without this index hearing of it
    }
    return out;
  }

  /** Events after `afterId` (exclusive; "0" for all), oldest first. */
  async events(id: string, afterId = "0", count = 100): Promise<ResearchEvent[]> {
    const key = researchKeys(this.prefix, id).events;
    const start = afterId === "0" ? "-" : `(${afterId}`;
    const entries = await this.redis.xrange(key, start, "+", "COUNT", count);
    return entries.map(([streamId, fields]) => {
      const map: Record<string, string> = {};
      for (let i = 0; i + 1 < fields.length; i += 2) map[fields[i]!] = fields[i + 1]!;
      const data = JSON.parse(map.data ?? "{}") as Record<string, unknown> & { status?: ResearchStatus; stage?: Stage | null; at?: string };
      const { status, stage, at, ...rest } = data;
      return {
        id: streamId,
        type: map.type as ResearchEventType,
        researchId: id,
        status: status ?? "queued",
        stage: stage ?? null,
        at: at ?? new Date(Number(streamId.split("-")[0])).toISOString(),
        ...(Object.keys(rest).length ? { data: rest } : {}),
      };
    });
  }

  private async update(
    id: string,
    eventType: ResearchEventType,
    eventData: Record<string, unknown>,
    fields: Record<string, string>,
    newStatus?: ResearchStatus,
    /** Status to report in the event when this update does not change it (saves a read). */
    currentStatus?: ResearchStatus,
    /** Apply only if this field is not set yet. */
    guardField = "",
  ): Promise<UpdateResult> {
    const keys = researchKeys(this.prefix, id);
    const now = new Date().toISOString();
    const status = newStatus ?? currentStatus ?? ((await this.status(id)) || "running");
    const stage = (fields.stage ?? eventData.stage ?? null) || null;
    const event = JSON.stringify({ status, stage, at: now, ...eventData });
    const res = await this.scripts.tracelaneResearchUpdate(
      keys.record,
      keys.events,
      queuedIndexKey(this.prefix),
      this.ttl,
      eventType,
      event,
      id,
      guardField,
      ...Object.entries({ ...fields, updatedAt: now }).flat(),
    );
    return UPDATE_RESULTS[res] ?? "missing";
  }
}
