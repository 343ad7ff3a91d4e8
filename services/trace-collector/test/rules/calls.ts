import type { SpanRecord } from "@tracelane/trace-store";
import { modelCalls, type ModelCall } from "../../src/anomalies/model-calls.js";
import { ATTR_LLM_ATTEMPTS, ATTR_STAGE } from "@tracelane/pipeline";
import {
  ATTR_ERROR_TYPE,
  ATTR_HTTP_REQUEST_METHOD,
  ATTR_HTTP_REQUEST_RESEND_COUNT,
  ATTR_HTTP_RESPONSE_STATUS_CODE,
} from "@tracelane/tracing/attributes";

/** One HTTP attempt of a call: its status code, or an error type when it got no answer. */
type Attempt = { status: number; ms?: number } | { error: string; ms?: number };

export interface CallSpec {
  model?: string;
  stage?: string;
  /** The call's HTTP attempts in order (default: one that answered 200 in `latencyMs`). */
  attempts?: Attempt[];
  /** Backoff between attempts, ms. */
  backoffMs?: number;
  latencyMs?: number;
  inputTokens?: number;
  outputTokens?: number;
  costUsd?: number | null;
  /** Error type and message of the call when its last attempt failed. */
  errorType?: string;
  statusMessage?: string;
}

/**
 * A `chat <model>` span and its HTTP attempt spans as our services record them (the traced fetch:
 * resend_count per attempt, error.type on failed ones; the chat span: tracelane.llm.attempts, and
 * ERROR status when the last attempt failed), turned into the ModelCall the rules judge.
 */
export function callSpans(spec: CallSpec = {}): SpanRecord[] {
  const model = spec.model ?? "gpt-4.1";
  const attempts = spec.attempts ?? [{ status: 200, ms: spec.latencyMs ?? 100 }];
  const spans: SpanRecord[] = [];
  const start = 1_000;
  let t = start;
  attempts.forEach((a, i) => {
    const ms = a.ms ?? 10;
    const failed = "error" in a || a.status >= 400;
    spans.push({
      traceId: "a".repeat(32),
      spanId: `http${i}`.padEnd(16, "0"),
      parentSpanId: "c".repeat(16),
      name: "POST",
      kind: "client",
      service: "analysis-worker",
      startMs: t,
      endMs: t + ms,
      durationMs: ms,
      status: failed && ("error" in a || a.status >= 500) ? "error" : "unset",
      attributes: {
        [ATTR_HTTP_REQUEST_METHOD]: "POST",
        [ATTR_HTTP_REQUEST_RESEND_COUNT]: i,
        ...("status" in a ? { [ATTR_HTTP_RESPONSE_STATUS_CODE]: a.status } : {}),
        // As the traced fetch records it: only 5xx and no answer are errors of the attempt itself.
        ...("error" in a ? { [ATTR_ERROR_TYPE]: a.error } : a.status >= 500 ? { [ATTR_ERROR_TYPE]: String(a.status) } : {}),
      },
    });
    t += ms + (i < attempts.length - 1 ? (spec.backoffMs ?? 0) : 0);
  });
  const last = attempts[attempts.length - 1]!;
  const failed = "error" in last || last.status >= 400;
  spans.unshift({
    traceId: "a".repeat(32),
    spanId: "c".repeat(16),
    name: `chat ${model}`,
    kind: "client",
    service: "analysis-worker",
    startMs: start,
    endMs: t,
    durationMs: t - start,
    status: failed ? "error" : "ok",
    ...(failed ? { statusMessage: spec.statusMessage ?? `Model call to "${model}" failed` } : {}),
    attributes: {
      [ATTR_STAGE]: spec.stage ?? "analysis",
      [ATTR_LLM_ATTEMPTS]: attempts.length,
      ...(failed ? { [ATTR_ERROR_TYPE]: spec.errorType ?? "ModelCallError" } : {}),
    },
    call: {
      model,
      inputTokens: failed ? 0 : (spec.inputTokens ?? 10),
      outputTokens: failed ? 0 : (spec.outputTokens ?? 10),
      cachedInputTokens: 0,
      costUsd: spec.costUsd === undefined ? 0.001 : spec.costUsd,
    },
  });
  return spans;
}

export function call(spec: CallSpec = {}): ModelCall {
  const spans = callSpans(spec);
  const [found] = modelCalls(spans, new Map(spans.map((s) => [s.spanId, spec.stage ?? "analysis"])));
  return found!;
}
