import { addUsd, roundMs } from "@tracelane/pricing";
import {
  MAX_TRACE_DEPTH_DEFAULT,
  resolveStages,
  spanDepths,
  type CallBreakdown,
  type CallStat,
  type SpanRecord,
  type StageTokenFlow,
  type TraceStatus,
  type TraceSummary,
} from "@tracelane/trace-store";
import { ATTR_CLAIM_COUNT, ATTR_RESEARCH_ID, RESEARCH_PIPELINE } from "@tracelane/pipeline";
import {
  ATTR_HTTP_REQUEST_RESEND_COUNT,
  ATTR_JOB_ATTEMPT,
  ATTR_MESSAGING_DESTINATION_NAME,
  ATTR_MESSAGING_MESSAGE_ID,
  ATTR_QUEUE_WAIT_MS,
} from "@tracelane/tracing/attributes";

export const UNKNOWN_STAGE = "unknown";

const byStartThenId = (a: SpanRecord, b: SpanRecord) => a.startMs - b.startMs || (a.spanId < b.spanId ? -1 : a.spanId > b.spanId ? 1 : 0);

const numAttr = (s: SpanRecord, key: string): number | undefined => {
  const v = s.attributes[key];
  return typeof v === "number" && Number.isFinite(v) ? v : undefined;
};

/** Retry evidence on one span: a redelivered job (attempt > 1) or a resent HTTP request. */
function isRetrySpan(s: SpanRecord): boolean {
  return (numAttr(s, ATTR_JOB_ATTEMPT) ?? 1) > 1 || (numAttr(s, ATTR_HTTP_REQUEST_RESEND_COUNT) ?? 0) > 0;
}

function sameMessage(a: SpanRecord, b: SpanRecord): boolean {
  const idA = a.attributes[ATTR_MESSAGING_MESSAGE_ID];
  const idB = b.attributes[ATTR_MESSAGING_MESSAGE_ID];
  if (idA !== undefined && idB !== undefined) return idA === idB;
  return (
    a.parentSpanId === b.parentSpanId && a.attributes[ATTR_MESSAGING_DESTINATION_NAME] === b.attributes[ATTR_MESSAGING_DESTINATION_NAME]
  );
}

/**
 * "error" when some failed span was not recovered: walking up from it, no caller ended OK
 * (an HTTP attempt under a chat span that succeeded was recovered by the client's retry) and,
 * for a queue consumer, no later attempt of the same message succeeded (BullMQ retry).
 * A stage cancelled mid-call (its consumer span ERROR, error.type "cancelled", a "cancelled" event) is
 * such a span: the trace of a cancelled research is not ok.
 */
export function traceStatus(spans: readonly SpanRecord[]): TraceStatus {
  const byId = new Map(spans.map((s) => [s.spanId, s]));
  const unrecovered = (failed: SpanRecord): boolean => {
    let cur = failed;
    for (let hops = 0; hops < 256; hops++) {
      if (cur.kind === "consumer") {
        const retried = spans.some(
          (o) => o !== cur && o.kind === "consumer" && o.status !== "error" && o.startMs >= cur.startMs && sameMessage(o, cur),
        );
        return !retried;
      }
      const parent = cur.parentSpanId ? byId.get(cur.parentSpanId) : undefined;
      if (!parent) return true;
      if (parent.status !== "error" && parent.kind !== "producer") return false;
      if (parent.kind === "producer") return true;
      cur = parent;
    }
    return true;
  };
  return spans.some((s) => s.status === "error" && unrecovered(s)) ? "error" : "ok";
}

const emptyBreakdown = (): CallBreakdown => ({
  calls: 0,
  errors: 0,
  inputTokens: 0,
  outputTokens: 0,
  cachedInputTokens: 0,
  costUsd: null,
  unpricedCalls: 0,
  durationMs: 0,
});

function addCall(b: CallBreakdown, s: SpanRecord): void {
  const c = s.call!;
  b.calls++;
  if (s.status === "error") b.errors++;
  b.inputTokens += c.inputTokens;
  b.outputTokens += c.outputTokens;
  b.cachedInputTokens += c.cachedInputTokens;
  // Nano-dollar and 0.1 ms sums: a breakdown is exactly the sum of its calls.
  if (c.costUsd === null) b.unpricedCalls++;
  else b.costUsd = addUsd(b.costUsd ?? 0, c.costUsd);
  b.durationMs = roundMs(b.durationMs + s.durationMs);
}

/**
 * The trace's token flow: per stage, what its model calls read and wrote, in pipeline order
 * (RESEARCH_PIPELINE; a stage it does not name follows in the order it was first seen). Every pipeline
 * stage from the first seen to the last seen is listed, with 0 calls when it made none, and not complete
 * when none of its spans has arrived yet: a later stage's spans can arrive before the previous stage's
 * (each process exports on its own timer). Calls of no stage are left out: they hand nothing over.
 * `calls` are in start order, `seen` in the order stages were first seen, as in the summary.
 */
function tokenFlowOf(
  calls: readonly CallStat[],
  seen: readonly string[],
  complete: (stage: string) => boolean,
  order: readonly string[] = RESEARCH_PIPELINE.names,
): StageTokenFlow[] {
  const known = [...new Set([...seen, ...calls.map((c) => c.stage)])].filter((s) => s !== UNKNOWN_STAGE);
  const inPipeline = known.map((s) => order.indexOf(s)).filter((i) => i >= 0);
  const stages = [
    ...(inPipeline.length > 0 ? order.slice(Math.min(...inPipeline), Math.max(...inPipeline) + 1) : []),
    ...known.filter((s) => !order.includes(s)),
  ];
  const flow = stages.map((stage): StageTokenFlow => ({
    stage,
    calls: 0,
    inputTokens: 0,
    outputTokens: 0,
    maxCallInputTokens: 0,
    growth: null,
    complete: known.includes(stage) && complete(stage),
  }));
  const byStage = new Map(flow.map((step) => [step.stage, step]));
  for (const c of calls) {
    const step = byStage.get(c.stage);
    if (!step) continue;
    step.calls++;
    step.inputTokens += c.inputTokens;
    step.outputTokens += c.outputTokens;
    step.maxCallInputTokens = Math.max(step.maxCallInputTokens, c.inputTokens);
  }
  let handedOver: StageTokenFlow | undefined;
  for (const step of flow) {
    if (step.calls === 0) continue;
    if (handedOver && handedOver.outputTokens > 0)
      step.growth = Math.round((step.maxCallInputTokens / handedOver.outputTokens) * 100) / 100;
    handedOver = step;
  }
  return flow;
}

/**
 * Whether every span that carries a stage's model calls has arrived, so its token sums will not grow.
 * A call's spans arrive in the order they ended, batch after batch from the process that made them; its
 * job span (CONSUMER ancestor) ends after it, so once the call's parents up to that span (or up to the
 * root, for a trace without jobs) are here, so is every call of that job. A fan-out stage also needs its
 * fan-in span (it links to every claim's job span) and each claim span it links to: claims run on any
 * replica, so their spans arrive in no fixed order.
 */
function stageCompleteness(
  spans: readonly SpanRecord[],
  byId: ReadonlyMap<string, SpanRecord>,
  stages: ReadonlyMap<string, string | undefined>,
): (stage: string) => boolean {
  const attached = (span: SpanRecord): boolean => {
    let cur = span;
    for (let hops = 0; hops < 256; hops++) {
      if (cur.kind === "consumer" || !cur.parentSpanId) return true;
      const parent = byId.get(cur.parentSpanId);
      if (!parent) return false;
      cur = parent;
    }
    return true;
  };
  const incomplete = new Set<string>();
  const fansOut = new Set<string>();
  const fannedIn = new Map<string, boolean>();
  for (const s of spans) {
    const stage = stages.get(s.spanId);
    if (!stage) continue;
    if (s.call && !attached(s)) incomplete.add(stage);
    const claims = s.attributes[ATTR_CLAIM_COUNT];
    // No claims: nothing fans out (and no claim calls to wait for).
    if (typeof claims !== "number" || claims === 0) continue;
    fansOut.add(stage);
    const links = (s.links ?? []).filter((l) => l.traceId === s.traceId);
    if (links.length > 0) fannedIn.set(stage, (fannedIn.get(stage) ?? true) && links.every((l) => byId.has(l.spanId)));
  }
  return (stage) => !incomplete.has(stage) && (!fansOut.has(stage) || fannedIn.get(stage) === true);
}

/**
 * The trace summary, recomputed from every stored span of the trace. Spans are ordered by
 * (start, id) first, so the same set of spans gives the same summary whatever order or how many
 * times they arrived.
 */
export function summarizeTrace(
  traceId: string,
  input: readonly SpanRecord[],
  droppedSpans: number,
  stages: ReadonlyMap<string, string | undefined> = resolveStages(input),
  depth: { depths: ReadonlyMap<string, number>; maxDepth: number } = { depths: spanDepths(input), maxDepth: MAX_TRACE_DEPTH_DEFAULT },
): TraceSummary {
  let tooDeepSpans = 0;
  for (const d of depth.depths.values()) if (d > depth.maxDepth) tooDeepSpans++;
  const spans = [...input].sort(byStartThenId);
  const ids = new Set(spans.map((s) => s.spanId));
  const roots = spans.filter((s) => !s.parentSpanId);
  const root = roots[0] ?? spans.find((s) => !ids.has(s.parentSpanId!)) ?? spans[0];
  if (!root) throw new Error(`summarizeTrace(${traceId}): no spans`);

  let startMs = Infinity;
  let endMs = -Infinity;
  const services: string[] = [];
  const stageOrder: string[] = [];
  const models = new Set<string>();
  const byStage: Record<string, CallBreakdown> = {};
  const byModel: Record<string, CallBreakdown> = {};
  const calls: CallStat[] = [];
  const priceVersions = new Set<string>();
  let researchId: string | undefined;
  let errorSpans = 0;
  let queueWaitMs = 0;
  let retries = 0;
  const total = emptyBreakdown();

  const byId = new Map(spans.map((s) => [s.spanId, s]));
  /** The job attempt (nearest CONSUMER ancestor) a span ran in; undefined when none has arrived. */
  const attemptOf = (span: SpanRecord): SpanRecord | undefined => {
    let cur = span.parentSpanId ? byId.get(span.parentSpanId) : undefined;
    for (let hops = 0; cur && hops < 256; hops++) {
      if (cur.kind === "consumer") return cur;
      cur = cur.parentSpanId ? byId.get(cur.parentSpanId) : undefined;
    }
    return undefined;
  };
  for (const s of spans) {
    startMs = Math.min(startMs, s.startMs);
    endMs = Math.max(endMs, s.endMs);
    if (!services.includes(s.service)) services.push(s.service);
    const stage = stages.get(s.spanId);
    if (stage && !stageOrder.includes(stage)) stageOrder.push(stage);
    if (s.status === "error") errorSpans++;
    if (isRetrySpan(s)) retries++;
    const rid = s.attributes[ATTR_RESEARCH_ID];
    if (researchId === undefined && typeof rid === "string") researchId = rid;
    if (s.kind === "consumer") {
      const wait = numAttr(s, ATTR_QUEUE_WAIT_MS);
      const producer = s.parentSpanId ? byId.get(s.parentSpanId) : undefined;
      if (wait !== undefined) queueWaitMs = roundMs(queueWaitMs + Math.max(0, wait));
      else if (producer?.kind === "producer") queueWaitMs = roundMs(queueWaitMs + Math.max(0, s.startMs - producer.endMs));
    }
    if (s.call) {
      const stageName = stage ?? UNKNOWN_STAGE;
      models.add(s.call.model);
      addCall(total, s);
      addCall((byStage[stageName] ??= emptyBreakdown()), s);
      addCall((byModel[s.call.model] ??= emptyBreakdown()), s);
      calls.push({
        spanId: s.spanId,
        stage: stageName,
        model: s.call.model,
        durationMs: roundMs(s.durationMs),
        inputTokens: s.call.inputTokens,
        outputTokens: s.call.outputTokens,
        cachedInputTokens: s.call.cachedInputTokens,
        costUsd: s.call.costUsd,
        error: s.status === "error",
        failedAttempt: s.status === "error" || attemptOf(s)?.status === "error",
        ...(s.call.priceVersion ? { priceVersion: s.call.priceVersion } : {}),
      });
      if (s.call.priceVersion) priceVersions.add(s.call.priceVersion);
    }
  }

  return {
    traceId,
    rootName: root.name,
    rootService: root.service,
    rootSpanId: root.spanId,
    hasRoot: roots.length > 0,
    status: traceStatus(spans),
    startMs,
    endMs,
    startedAt: new Date(startMs).toISOString(),
    endedAt: new Date(endMs).toISOString(),
    durationMs: roundMs(Math.max(0, endMs - startMs)),
    spanCount: spans.length,
    droppedSpans,
    maxDepth: depth.maxDepth,
    tooDeepSpans,
    errorSpans,
    services,
    stages: stageOrder,
    models: [...models].sort(),
    ...(researchId !== undefined ? { researchId } : {}),
    callCount: total.calls,
    inputTokens: total.inputTokens,
    outputTokens: total.outputTokens,
    cachedInputTokens: total.cachedInputTokens,
    costUsd: total.costUsd ?? 0,
    unpricedCalls: total.unpricedCalls,
    queueWaitMs,
    modelTimeMs: total.durationMs,
    retries,
    byStage,
    byModel,
    tokenFlow: tokenFlowOf(calls, stageOrder, stageCompleteness(spans, byId, stages)),
    calls,
    priceVersions: [...priceVersions].sort(),
  };
}
