import type { Span } from "@opentelemetry/api";
import { DelayedError, Worker, type Job } from "bullmq";
import {
  ATTR_CHECKPOINT_REUSED,
  ATTR_CIRCUIT_DELAY_MS,
  ATTR_CIRCUIT_MODELS,
  ATTR_CIRCUIT_WAITED_MS,
  ATTR_RATE_LIMIT_DELAY_MS,
  ATTR_RESEARCH_COMPLETED,
  ATTR_RESEARCH_ID,
  ATTR_STAGE,
  EVENT_CHECKPOINT_ALREADY_WRITTEN,
  EVENT_CIRCUIT_OPEN_DELAYED,
  EVENT_CIRCUIT_OPEN_WAIT_EXCEEDED,
  EVENT_QUEUE_RATE_LIMITED,
  type Stage,
} from "@tracelane/pipeline";
import { stageJobSchema, type StageJob, type StageQueues } from "@tracelane/queue-contract";
import type { ResearchStore } from "@tracelane/research-store";
import { recordCancellation, withAgentSpan } from "@tracelane/tracing";
import type { ChatClient } from "./chat-client.js";
import { CircuitOpenError, errorTypeOf, InvalidJobDataError, ModelCallError, ModelNotAllowedError, paidSpendOf } from "./errors.js";
import { isFinalAttempt } from "./final-attempt.js";
import type { ModelPolicy } from "@tracelane/pricing";
import { runModelStep, type DailySpend, type ModelStepConfig } from "./model-step.js";
import { createDeltaWriter } from "./delta-writer.js";
import { processClaim, processFanOutParent, type FanOutDeps } from "./fan-out.js";
import type { StageDefinition } from "./stage-definition.js";

export interface StageProcessorDeps<S extends string = Stage> {
  definition: StageDefinition<S>;
  /** Its pipeline (what comes next) is the queues' pipeline. */
  store: ResearchStore<S, string>;
  queues: StageQueues<S>;
  client: ChatClient;
  /** The stage's model unless the research overrides it. */
  defaultModel: string;
  modelStep: ModelStepConfig;
  /** Which models the stage may run (`<STAGE>_ALLOWED_MODELS`): a job on another fails before any call. */
  modelPolicy?: ModelPolicy;
  /** DAILY_SPEND_CAP_USD (0 or unset: none): a call that would take the research's spender past it today is not made. */
  dailySpendCapUsd?: number;
  /** Pause the whole queue (every worker of the stage) after a provider 429. */
  rateLimitQueue?: (ms: number) => Promise<void>;
  rateLimitBackoffMs?: number;
  /**
   * While every model of the stage has its circuit open, the job waits (delayed until the earliest
   * half-open time, no attempt spent) until the stage has been trying this long; then the research
   * fails with circuit_open. Default 5 minutes (CIRCUIT_OPEN_MAX_WAIT_MS).
   */
  circuitOpenMaxWaitMs?: number;
  /** Test-only chaos: called right after the checkpoint, before the next stage is enqueued. */
  afterCheckpoint?: () => void;
}

export type StageOutcome =
  | {
      outcome: "completed";
      researchId: string;
      next: string | null;
      reusedCheckpoint: boolean;
      /** The model call this attempt made (none when it reused a checkpoint); a fan-in's: its claims' sum. */
      call?: { model: string; latencyMs: number; costUsd: number | null };
      /** A claim job's check, or (fan-in) the verdicts of every claim. */
      claim?: { index: number; verdict: string; modelCalls: number };
      claims?: Record<string, number>;
    }
  /** The research was cancelled during the model call; the call is recorded on the cancelled stage. */
  | { outcome: "cancelled"; researchId: string; call: { model: string; latencyMs: number; costUsd: number | null } }
  | { outcome: "skipped"; researchId: string; reason: string };

export { isFinalAttempt };

/** A delayed job is not picked up again sooner than this, even when its circuit is already due to half-open. */
const MIN_CIRCUIT_DELAY_MS = 50;

/**
 * One stage of one research: read the record, call the model (unless an
 * earlier attempt already checkpointed the output), checkpoint, then enqueue
 * the next stage with its deterministic id, or mark the research completed.
 */
export function createStageProcessor<S extends string = Stage>(
  deps: StageProcessorDeps<S> & Partial<Omit<FanOutDeps<S>, keyof StageProcessorDeps<S>>>,
) {
  const { definition, store, queues, client } = deps;
  const stage = definition.stage;
  const next = queues.pipeline.next(stage);
  const jobSchema = stageJobSchema(queues.pipeline);
  const fanOut = queues.pipeline.fanOutStage === stage;
  if (fanOut && (!definition.claimCheck || !deps.tools || !deps.claimCheck)) {
    throw new Error(`stage "${stage}" fans out per claim: its definition needs claimCheck, and the runner its tools and claimCheck config`);
  }
  const fanOutDeps = deps as FanOutDeps<S>;

  // `token` is the job's lock token, which moving the job to delayed needs (BullMQ passes it to a processor).
  return async function processStage(job: Job<StageJob<S>>, span: Span, token?: string): Promise<StageOutcome> {
    const parsed = jobSchema.safeParse(job.data);
    if (!parsed.success || parsed.data.stage !== stage) {
      const why = parsed.success
        ? `stage "${parsed.data.stage}" on the ${stage} queue`
        : parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ");
      throw new InvalidJobDataError(`job ${job.id} does not match the ${stage} queue contract: ${why}`);
    }
    const { researchId } = parsed.data;
    span.setAttributes({ [ATTR_RESEARCH_ID]: researchId, [ATTR_STAGE]: stage });
    if (parsed.data.claim !== undefined) {
      if (!fanOut) throw new InvalidJobDataError(`job ${job.id} is a claim job but ${stage} does not fan out per claim`);
      return processClaim(fanOutDeps, job, span, { researchId, index: parsed.data.claim });
    }
    if (fanOut) {
      const queueWaitMs = Math.max(0, (job.processedOn ?? Date.now()) - parsed.data.enqueuedAt);
      return processFanOutParent(fanOutDeps, job, span, token, { researchId, queueWaitMs });
    }

    /** When this stage of the research first started (any attempt), for the circuit-open wait bound. */
    let stageStartedAt: number | undefined;
    /** Whose daily spend this research's calls count against (known once the stage started). */
    let spendSubjectOf: string | undefined;
    try {
      const queueWaitMs = Math.max(0, (job.processedOn ?? Date.now()) - parsed.data.enqueuedAt);
      const attempt = Math.max(job.attemptsStarted, job.attemptsMade + 1);
      const started = await store.stageStarted(researchId, stage, { model: deps.defaultModel, attempt, queueWaitMs });
      if (started.result === "missing") throw new InvalidJobDataError(`research ${researchId} does not exist (expired or never created)`);
      if (started.result === "final") return { outcome: "skipped", researchId, reason: started.view.status };
      if (started.result === "applied") spendSubjectOf = started.spendSubject;
      const { view, outputs } = started;
      // (Only an applied start calls the model, so only it can meet an open circuit.)
      if (started.result === "applied" && started.record.startedAt) stageStartedAt = Date.parse(started.record.startedAt);

      // A retry after a crash finds the output checkpointed and does not pay for the same call twice.
      const reusedCheckpoint = started.result === "checkpointed";
      span.setAttribute(ATTR_CHECKPOINT_REUSED, reusedCheckpoint);
      let call: { model: string; latencyMs: number; costUsd: number | null } | undefined;
      if (started.result === "applied") {
        const model = started.record.model ?? deps.defaultModel;
        const refusal = deps.modelPolicy?.refusal(stage, model);
        if (refusal) throw new ModelNotAllowedError(`Stopped before ${stage}: ${refusal.message}`);
        const cap = deps.dailySpendCapUsd ?? 0;
        const daily: DailySpend | undefined =
          cap > 0 && started.spendSubject ? { capUsd: cap, leftUsd: cap - (await store.spentOn(started.spendSubject)) } : undefined;
        // A streamed stage's text goes out as `<stage>.delta` events while the model writes it.
        const deltas = definition.stream ? createDeltaWriter((text, n) => store.stageDelta(researchId, stage, text, n)) : undefined;
        // The stage's work is an agent run (GenAI `invoke_agent`); its facts stay on the CONSUMER span.
        const step = await withAgentSpan({ name: stage, id: job.id ?? researchId }, () =>
          runModelStep(
            { definition, client, config: deps.modelStep, stageSpan: span, ...(deltas ? { onDelta: deltas.push } : {}) },
            view,
            outputs,
            model,
            daily,
          ),
        ).finally(() => deltas?.flush());
        const saved = await store.stageCompleted(
          researchId,
          stage,
          {
            output: step.output,
            model: step.result.responseModel,
            usage: step.usage,
            costUsd: step.costUsd,
            retryCostUsd: step.retryCostUsd,
            latencyMs: step.result.latencyMs,
            next,
            spendSubject: started.spendSubject,
            claims: step.claims,
          },
          { stage: started.record, next: next ? view.stages[next] : undefined },
        );
        call = { model: step.result.responseModel, latencyMs: step.result.latencyMs, costUsd: step.costUsd };
        // Cancelled while the model ran: the call was made and paid for, so it goes on the cancelled
        // stage (the research's totals count it) and the trace shows the cancellation, not ok.
        if (
          saved === "final" &&
          (await store.stageCallAfterCancel(researchId, stage, { ...call, usage: step.usage, spendSubject: started.spendSubject })) ===
            "applied"
        ) {
          recordCancellation(span, "research cancelled while the stage ran", { [ATTR_RESEARCH_ID]: researchId });
          return { outcome: "cancelled", researchId, call };
        }
        // "duplicate": a concurrent attempt of this job checkpointed first; its output stands and
        // publishing the next stage below is a no-op or the step that attempt had not reached yet.
        if (saved === "final" || saved === "missing") return { outcome: "skipped", researchId, reason: saved };
        if (saved === "duplicate") span.addEvent(EVENT_CHECKPOINT_ALREADY_WRITTEN);
        else deps.afterCheckpoint?.();
      }

      if (next) await queues.publish(researchId, next);
      else if ((await store.completed(researchId)) === "applied") span.setAttribute(ATTR_RESEARCH_COMPLETED, true); // the forecast's cue
      return { outcome: "completed", researchId, next: next ?? null, reusedCheckpoint, ...(call ? { call } : {}) };
    } catch (err) {
      const error = { type: errorTypeOf(err), message: err instanceof Error ? err.message : String(err) };
      // Calls this attempt paid for before failing still count (the research's cost, the spender's day).
      const paid = paidSpendOf(err);
      if (paid) await store.stageWasted(researchId, stage, { ...paid, spendSubject: spendSubjectOf }).catch(() => undefined);
      if (err instanceof ModelCallError && err.type === "rate_limited" && deps.rateLimitQueue) {
        // Back the whole queue off instead of hammering the provider; the job goes back
        // to waiting without spending one of its attempts.
        const ms = err.retryAfterMs ?? deps.rateLimitBackoffMs ?? 1_000;
        span.addEvent(EVENT_QUEUE_RATE_LIMITED, { [ATTR_RATE_LIMIT_DELAY_MS]: ms });
        await deps.rateLimitQueue(ms);
        await store.stageRetrying(researchId, stage, { error, attempt: job.attemptsMade + 1 }).catch(() => undefined);
        throw Worker.RateLimitError();
      }
      if (err instanceof CircuitOpenError && token) {
        // Every model of the stage is failing fast: wait for the earliest half-open instead of
        // spending the job's attempts (each would fail in microseconds). Not an attempt: the job
        // is moved to delayed as it is, like the queue-wide 429 pause.
        const now = Date.now();
        const waitedMs = now - (stageStartedAt ?? now);
        if (waitedMs < (deps.circuitOpenMaxWaitMs ?? 300_000)) {
          const retryAt = Math.max(err.retryAt, now + MIN_CIRCUIT_DELAY_MS);
          span.addEvent(EVENT_CIRCUIT_OPEN_DELAYED, {
            [ATTR_CIRCUIT_MODELS]: err.models.join(","),
            [ATTR_CIRCUIT_DELAY_MS]: retryAt - now,
            [ATTR_CIRCUIT_WAITED_MS]: waitedMs,
          });
          await store.stageRetrying(researchId, stage, { error, attempt: job.attemptsMade + 1 }).catch(() => undefined);
          await job.moveToDelayed(retryAt, token);
          throw new DelayedError(`circuit open for ${err.models.join(", ")}: job delayed until ${new Date(retryAt).toISOString()}`);
        }
        span.addEvent(EVENT_CIRCUIT_OPEN_WAIT_EXCEEDED, { [ATTR_CIRCUIT_WAITED_MS]: waitedMs });
      }
      if (isFinalAttempt(err, job.attemptsMade, job.opts.attempts ?? 1)) {
        // If Redis is down too, the worker's final-failure hook records it once Redis is back.
        await store.failed(researchId, { stage, ...error }).catch(() => undefined);
      } else {
        await store.stageRetrying(researchId, stage, { error, attempt: job.attemptsMade + 1 }).catch(() => undefined);
      }
      throw err;
    }
  };
}
