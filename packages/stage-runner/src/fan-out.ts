import type { Span } from "@opentelemetry/api";
import { WaitingChildrenError, type Job } from "bullmq";
import { ATTR_CLAIM_COUNT, ATTR_CLAIM_INDEX, ATTR_CLAIM_VERDICT, ATTR_RESEARCH_COMPLETED, ATTR_RESEARCH_ID } from "@tracelane/pipeline";
import { addCostUsd, addUsd } from "@tracelane/pricing";
import { addUsage, CLAIM_VERDICTS, type ClaimRecord, type ResearchView } from "@tracelane/research-store";
import { ATTR_JOB_ATTEMPT, ATTR_QUEUE_WAIT_MS, recordCancellation, withAgentSpan } from "@tracelane/tracing";
import { checkClaim, ClaimAttemptError, type ClaimCheckConfig } from "./claim-check.js";
import { ClaimCancelledError, errorTypeOf, InvalidJobDataError, ModelNotAllowedError } from "./errors.js";
import { isFinalAttempt } from "./final-attempt.js";
import type { ClaimTool } from "./stage-definition.js";
import type { StageOutcome, StageProcessorDeps } from "./stage-processor.js";

export interface FanOutDeps<S extends string> extends StageProcessorDeps<S> {
  tools: ClaimTool[];
  claimCheck: ClaimCheckConfig;
  /** FACTCHECK_FAIL_ON_CLAIM_ERROR: a claim whose every attempt failed fails the research (default: it is unverifiable). */
  failOnClaimError: boolean;
}

const isFinalStatus = (s: string) => s === "completed" || s === "failed" || s === "cancelled";

/**
 * The fan-out stage's own job, in two visits. First: one child job per claim (deterministic ids, so a
 * retried or restarted parent adds none twice), then the parent parks in waiting-children. BullMQ brings it
 * back once every child is done: it reads the claims' verdicts, writes the stage's output (its summary) in
 * an `invoke_agent` span linked to every claim's span, and continues to the next stage.
 */
export async function processFanOutParent<S extends string>(
  deps: FanOutDeps<S>,
  job: Job,
  span: Span,
  token: string | undefined,
  info: { researchId: string; queueWaitMs: number },
): Promise<StageOutcome> {
  const { store, queues, definition } = deps;
  const stage = definition.stage;
  const { researchId } = info;
  const next = queues.pipeline.next(stage);
  const children = await job.getDependenciesCount();
  const known = (children.processed ?? 0) + (children.unprocessed ?? 0) + (children.failed ?? 0) + (children.ignored ?? 0);

  let view: ResearchView<S, string>;
  let reused: boolean;
  if (known === 0) {
    // First visit (or a retry of one that died before adding its children): the stage starts here.
    // attemptsMade, not attemptsStarted: coming back from waiting-children is not another attempt.
    const started = await store.stageStarted(researchId, stage, {
      model: deps.defaultModel,
      attempt: job.attemptsMade + 1,
      queueWaitMs: info.queueWaitMs,
    });
    if (started.result === "missing") throw new InvalidJobDataError(`research ${researchId} does not exist (expired or never created)`);
    if (started.result === "final") return { outcome: "skipped", researchId, reason: started.view.status };
    view = started.view;
    reused = started.result === "checkpointed";
    const claims = view.stages[stage].claims ?? [];
    if (started.result === "applied" && claims.length > 0) {
      const model = started.record.model ?? deps.defaultModel;
      const refusal = deps.modelPolicy?.refusal(stage, model);
      if (refusal) throw new ModelNotAllowedError(`Stopped before ${stage}: ${refusal.message}`);
      await withAgentSpan({ name: stage, id: job.id ?? researchId, attributes: { [ATTR_CLAIM_COUNT]: claims.length } }, () =>
        queues.publishClaims(researchId, stage, claims.length),
      );
    }
  } else {
    // Back from waiting-children, or a retried parent whose children exist: no second start, no second child.
    const loaded = await store.load(researchId);
    if (!loaded) throw new InvalidJobDataError(`research ${researchId} expired while its claims were checked`);
    if (isFinalStatus(loaded.view.status)) return { outcome: "skipped", researchId, reason: loaded.view.status };
    view = loaded.view;
    // BullMQ counts coming back from waiting-children as a start; it is the same attempt, and it waited only
    // from the moment its last claim was done, not since the stage was first enqueued.
    span.setAttribute(ATTR_JOB_ATTEMPT, job.attemptsMade + 1);
    const lastDone = Math.max(0, ...(view.stages[stage].claims ?? []).map((c) => (c.finishedAt ? Date.parse(c.finishedAt) : 0)));
    if (lastDone > 0) span.setAttribute(ATTR_QUEUE_WAIT_MS, Math.max(0, (job.processedOn ?? Date.now()) - lastDone));
    reused = view.stages[stage].status === "completed";
  }

  const claims = view.stages[stage].claims ?? [];
  let fanIn: Pick<Extract<StageOutcome, { outcome: "completed" }>, "call" | "claims"> = {};
  if (!reused) {
    if (claims.length > 0 && token && (await job.moveToWaitingChildren(token))) {
      throw new WaitingChildrenError(`waiting for ${claims.length} claim jobs`);
    }
    // Every claim is done (or there were none): the fan-in.
    const after = known === 0 && claims.length === 0 ? { view } : await store.load(researchId);
    if (!after) throw new InvalidJobDataError(`research ${researchId} expired while its claims were checked`);
    if (isFinalStatus(after.view.status)) return { outcome: "skipped", researchId, reason: after.view.status };
    const checked = after.view.stages[stage].claims ?? [];
    const links = checked.flatMap((c) => (c.span ? [{ context: { traceId: c.span.traceId, spanId: c.span.spanId, traceFlags: 1 } }] : []));
    const output = await withAgentSpan(
      { name: stage, id: job.id ?? researchId, links, attributes: { [ATTR_CLAIM_COUNT]: checked.length } },
      async () =>
        definition.claimCheck!.summary(
          checked.map((c) => ({ claim: c.claim, verdict: c.verdict ?? "unverifiable", rationale: c.rationale, evidence: c.evidence })),
        ),
    );
    const row = after.view.stages[stage];
    const startedAt = row.startedAt ? Date.parse(row.startedAt) : Date.now();
    // No `known` records: the view's row is the claims' sum, the stored one (read by the store) is the stage's own.
    const saved = await store.stageCompleted(researchId, stage, {
      output,
      model: row.model ?? deps.defaultModel,
      // The claims carry the calls: the stage row sums them (ResearchView), so nothing is counted twice.
      usage: { inputTokens: 0, outputTokens: 0 },
      costUsd: 0,
      latencyMs: Date.now() - startedAt,
      next,
    });
    if (saved === "final" || saved === "missing") return { outcome: "skipped", researchId, reason: saved };
    fanIn = {
      call: { model: row.model ?? deps.defaultModel, latencyMs: Date.now() - startedAt, costUsd: row.costUsd ?? null },
      claims: Object.fromEntries(CLAIM_VERDICTS.map((v) => [v, checked.filter((c) => c.verdict === v).length])),
    };
  }
  if (next) await queues.publish(researchId, next);
  else if ((await store.completed(researchId)) === "applied") span.setAttribute(ATTR_RESEARCH_COMPLETED, true); // the forecast's cue
  span.setAttribute(ATTR_CLAIM_COUNT, claims.length);
  return { outcome: "completed", researchId, next: next ?? null, reusedCheckpoint: reused, ...fanIn };
}

/**
 * One claim's job: check it once. A claim checked before (an earlier attempt that crashed after its checkpoint,
 * or another replica) is not paid for again. An attempt that fails after paying for some calls records what it
 * spent (retry cost); the last attempt's failure makes the claim `unverifiable` with its error, and the research
 * goes on, unless FAIL_ON_CLAIM_ERROR.
 */
export async function processClaim<S extends string>(
  deps: FanOutDeps<S>,
  job: Job,
  span: Span,
  info: { researchId: string; index: number },
): Promise<StageOutcome> {
  const { store, definition } = deps;
  const stage = definition.stage;
  const { researchId, index } = info;
  span.setAttribute(ATTR_CLAIM_INDEX, index);
  const attempt = Math.max(job.attemptsStarted, job.attemptsMade + 1);
  const started = await store.claimStarted(researchId, stage, index, { model: deps.defaultModel, attempt });
  if (started.result === "missing") throw new InvalidJobDataError(`research ${researchId} does not exist (expired or never created)`);
  if (started.result === "unknown_claim") {
    throw new InvalidJobDataError(`job ${job.id} checks claim ${index} but research ${researchId} made ${started.made} claims`);
  }
  if (started.result === "final") return { outcome: "skipped", researchId, reason: started.view.status };
  if (started.result === "checked") {
    const claim = { index, verdict: started.claim.verdict ?? "unverifiable", modelCalls: 0 };
    return { outcome: "completed", researchId, next: null, reusedCheckpoint: true, claim };
  }

  const { view, claim } = started;
  const model = view.options.models?.[stage] ?? deps.defaultModel;
  const ctx = span.spanContext();
  const base: ClaimRecord = { ...claim, model, span: { traceId: ctx.traceId, spanId: ctx.spanId } };
  try {
    const refusal = deps.modelPolicy?.refusal(stage, model);
    if (refusal) throw new ModelNotAllowedError(`Stopped before ${stage}: ${refusal.message}`);
    const cap = deps.dailySpendCapUsd ?? 0;
    const daily = cap > 0 && started.spendSubject ? { capUsd: cap, leftUsd: cap - (await store.spentOn(started.spendSubject)) } : undefined;
    const result = await checkClaim({
      definition: definition.claimCheck!,
      tools: deps.tools,
      client: deps.client,
      config: deps.claimCheck,
      view,
      stage,
      jobId: job.id ?? `${researchId}-${index}`,
      index,
      claim: claim.claim,
      model,
      daily,
      stillWanted: async () => (await store.status(researchId)) !== "cancelled",
    });
    span.setAttribute(ATTR_CLAIM_VERDICT, result.answer.verdict);
    await store.claimCompleted(
      researchId,
      stage,
      {
        ...base,
        status: "checked",
        verdict: result.answer.verdict,
        evidence: result.answer.evidence,
        rationale: result.answer.rationale,
        model: result.model,
        usage: addUsage(claim.usage, result.usage),
        costUsd: addCostUsd(claim.costUsd, result.costUsd),
        latencyMs: result.latencyMs,
        modelCalls: result.modelCalls,
        toolCalls: result.toolCalls,
      },
      { usd: result.costUsd, spendSubject: started.spendSubject },
    );
    deps.afterCheckpoint?.();
    return {
      outcome: "completed",
      researchId,
      next: null,
      reusedCheckpoint: false,
      call: { model: result.model, latencyMs: result.latencyMs, costUsd: result.costUsd },
      claim: { index, verdict: result.answer.verdict, modelCalls: result.modelCalls },
    };
  } catch (thrown) {
    const err = thrown instanceof ClaimAttemptError ? thrown.cause : thrown;
    const spend = thrown instanceof ClaimAttemptError ? thrown.spend : undefined;
    const error = { type: errorTypeOf(err), message: err instanceof Error ? err.message : String(err) };
    const spent = { usage: addUsage(spend?.usage, undefined), costUsd: spend?.costUsd ?? 0 };
    if (err instanceof ClaimCancelledError) {
      // What it spent before stopping still counts (written on the cancelled research), and the trace says why.
      await store.claimCompleted(
        researchId,
        stage,
        {
          ...base,
          status: "failed",
          error,
          usage: addUsage(claim.usage, spent.usage),
          costUsd: addCostUsd(claim.costUsd, spent.costUsd),
          modelCalls: spend?.modelCalls ?? 0,
          toolCalls: spend?.toolCalls ?? 0,
        },
        { usd: spent.costUsd, spendSubject: started.spendSubject },
      );
      recordCancellation(span, "research cancelled while the claim was checked", { [ATTR_RESEARCH_ID]: researchId });
      return { outcome: "cancelled", researchId, call: { model, latencyMs: 0, costUsd: spent.costUsd } };
    }
    if (!isFinalAttempt(err, job.attemptsMade, job.opts.attempts ?? 1)) {
      await store
        .claimRetrying(researchId, stage, base, {
          error,
          spentUsd: spent.costUsd ?? 0,
          usage: spent.usage,
          spendSubject: started.spendSubject,
        })
        .catch(() => undefined);
      throw err;
    }
    if (deps.failOnClaimError) {
      await store
        .failed(researchId, { stage, ...error, message: `claim ${index} could not be checked: ${error.message}` })
        .catch(() => undefined);
      throw err;
    }
    // Its last attempt failed: the claim is unverifiable, with why, and the research goes on without it.
    await store.claimCompleted(
      researchId,
      stage,
      {
        ...base,
        status: "failed",
        verdict: "unverifiable",
        error,
        usage: addUsage(claim.usage, spent.usage),
        costUsd: addCostUsd(claim.costUsd, spent.costUsd),
        retryCostUsd: addUsd(claim.retryCostUsd ?? 0, spent.costUsd ?? 0),
      },
      { usd: spent.costUsd, spendSubject: started.spendSubject },
    );
    span.setAttribute(ATTR_CLAIM_VERDICT, "unverifiable");
    return {
      outcome: "completed",
      researchId,
      next: null,
      reusedCheckpoint: false,
      claim: { index, verdict: "unverifiable", modelCalls: 0 },
    };
  }
}
