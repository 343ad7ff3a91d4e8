import type { Span } from "@opentelemetry/api";
import { UnrecoverableError, Worker, type Job } from "bullmq";
import { nextStage, StageJobSchema, type StageJob, type StageQueues } from "@tracelane/queue-contract";
import type { ResearchStore } from "@tracelane/research-store";
import type { ChatClient } from "./chat-client.js";
import { errorTypeOf, InvalidJobDataError, ModelCallError } from "./errors.js";
import { runModelStep, type ModelStepConfig } from "./model-step.js";
import type { StageDefinition } from "./stage-definition.js";

export interface StageProcessorDeps {
  definition: StageDefinition;
  store: ResearchStore;
  queues: StageQueues;
  client: ChatClient;
  /** The stage's model unless the research overrides it. */
  defaultModel: string;
  modelStep: ModelStepConfig;
  /** Pause the whole queue (every worker of the stage) after a provider 429. */
  rateLimitQueue?: (ms: number) => Promise<void>;
  rateLimitBackoffMs?: number;
  /** Test-only chaos: called right after the checkpoint, before the next stage is enqueued. */
  afterCheckpoint?: () => void;
}

export type StageOutcome =
  | { outcome: "completed"; researchId: string; next: string | null; reusedCheckpoint: boolean }
  | { outcome: "skipped"; researchId: string; reason: string };

/** Is this the last attempt BullMQ will make for the job? */
export function isFinalAttempt(err: unknown, attemptsMade: number, attempts: number): boolean {
  return err instanceof UnrecoverableError || attemptsMade + 1 >= attempts;
}

/**
 * One stage of one research: read the record, call the model (unless an
 * earlier attempt already checkpointed the output), checkpoint, then enqueue
 * the next stage with its deterministic id, or mark the research completed.
 */
export function createStageProcessor(deps: StageProcessorDeps) {
  const { definition, store, queues, client } = deps;
  const stage = definition.stage;

  return async function processStage(job: Job<StageJob>, span: Span): Promise<StageOutcome> {
    const parsed = StageJobSchema.safeParse(job.data);
    if (!parsed.success || parsed.data.stage !== stage) {
      const why = parsed.success
        ? `stage "${parsed.data.stage}" on the ${stage} queue`
        : parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ");
      throw new InvalidJobDataError(`job ${job.id} does not match the ${stage} queue contract: ${why}`);
    }
    const { researchId } = parsed.data;
    span.setAttributes({ "tracelane.research.id": researchId, "tracelane.stage": stage });

    try {
      const queueWaitMs = Math.max(0, (job.processedOn ?? Date.now()) - parsed.data.enqueuedAt);
      const attempt = Math.max(job.attemptsStarted, job.attemptsMade + 1);
      const started = await store.stageStarted(researchId, stage, { model: deps.defaultModel, attempt, queueWaitMs });
      if (started.result === "missing") throw new InvalidJobDataError(`research ${researchId} does not exist (expired or never created)`);
      if (started.result === "final") return { outcome: "skipped", researchId, reason: started.view.status };
      const { view, outputs } = started;

      // A retry after a crash finds the output checkpointed and does not pay for the same call twice.
      const reusedCheckpoint = started.result === "checkpointed";
      span.setAttribute("tracelane.checkpoint.reused", reusedCheckpoint);
      if (started.result === "applied") {
        const step = await runModelStep({ definition, client, config: deps.modelStep }, view, outputs, started.record.model ?? deps.defaultModel);
        const next = nextStage(stage);
        const saved = await store.stageCompleted(
          researchId,
          stage,
          {
            output: step.result.content,
            model: step.result.responseModel,
            usage: step.usage,
            costUsd: step.costUsd,
            latencyMs: step.result.latencyMs,
            next,
          },
          { stage: started.record, next: next ? view.stages[next] : undefined },
        );
        // "duplicate": a concurrent attempt of this job checkpointed first; its output stands and
        // publishing the next stage below is a no-op or the step that attempt had not reached yet.
        if (saved === "final" || saved === "missing") return { outcome: "skipped", researchId, reason: saved };
        if (saved === "duplicate") span.addEvent("checkpoint_already_written");
        else deps.afterCheckpoint?.();
      }

      const next = nextStage(stage);
      if (next) await queues.publish(researchId, next);
      else await store.completed(researchId);
      return { outcome: "completed", researchId, next: next ?? null, reusedCheckpoint };
    } catch (err) {
      const error = { type: errorTypeOf(err), message: err instanceof Error ? err.message : String(err) };
      if (err instanceof ModelCallError && err.type === "rate_limited" && deps.rateLimitQueue) {
        // Back the whole queue off instead of hammering the provider; the job goes back
        // to waiting without spending one of its attempts.
        const ms = err.retryAfterMs ?? deps.rateLimitBackoffMs ?? 1_000;
        span.addEvent("queue_rate_limited", { "tracelane.rate_limit.delay_ms": ms });
        await deps.rateLimitQueue(ms);
        await store.stageRetrying(researchId, stage, error, job.attemptsMade + 1).catch(() => undefined);
        throw Worker.RateLimitError();
      }
      if (isFinalAttempt(err, job.attemptsMade, job.opts.attempts ?? 1)) {
        // If Redis is down too, the worker's final-failure hook records it once Redis is back.
        await store.failed(researchId, { stage, ...error }).catch(() => undefined);
      } else {
        await store.stageRetrying(researchId, stage, error, job.attemptsMade + 1).catch(() => undefined);
      }
      throw err;
    }
  };
}
