import { ATTR_LLM_ATTEMPTS } from "@tracelane/pipeline";
import type { SpanRecord } from "@tracelane/trace-store";
import { UNKNOWN_STAGE } from "../assemble/summary.js";
import {
  ATTR_ERROR_TYPE,
  ATTR_HTTP_REQUEST_METHOD,
  ATTR_HTTP_REQUEST_RESEND_COUNT,
  ATTR_HTTP_RESPONSE_STATUS_CODE,
  EVENT_RETRY,
} from "@tracelane/tracing/attributes";

/**
 * Why the attempts of a call failed: the provider said no (rate_limit: 429, provider_error: 5xx,
 * client_error: another 4xx), it did not answer in time (timeout), or it could not be reached.
 */
export type FailureCause = "rate_limit" | "provider_error" | "client_error" | "timeout" | "connection" | "unknown";

/** One model call: a `chat <model>` span (it has `call`), with what its HTTP attempt spans tell. */
export interface ModelCall {
  span: SpanRecord & { call: NonNullable<SpanRecord["call"]> };
  stage: string;
  /** HTTP attempts the call made: 1 + the model client's retries. */
  attempts: number;
  failed: boolean;
  /** Why it failed, or why its earlier attempts failed when it recovered; undefined for a clean call. */
  cause: FailureCause | undefined;
  /** Status code (or error type) of the attempt that decided the call: the last one. */
  lastStatus: number | string | undefined;
  /**
   * How long the model took to answer: from the start of the last HTTP attempt to the end of the
   * call, so failed attempts and the backoff between them do not count. The whole span when the
   * attempts are not traced.
   */
  latencyMs: number;
}

const num = (s: SpanRecord, key: string): number | undefined => {
  const v = s.attributes[key];
  return typeof v === "number" && Number.isFinite(v) ? v : undefined;
};
const str = (s: SpanRecord, key: string): string | undefined => {
  const v = s.attributes[key];
  return typeof v === "string" && v !== "" ? v : undefined;
};

/** An HTTP attempt span under a call (the traced fetch writes one per attempt). */
const isHttpAttempt = (s: SpanRecord) =>
  s.kind === "client" && (str(s, ATTR_HTTP_REQUEST_METHOD) !== undefined || num(s, ATTR_HTTP_REQUEST_RESEND_COUNT) !== undefined);

const TIMEOUT = /timed? ?out|timeout|AbortError|ETIMEDOUT|UND_ERR_(HEADERS|BODY|CONNECT)_TIMEOUT/i;
const CONNECTION = /ECONNRESET|ECONNREFUSED|ENOTFOUND|EAI_AGAIN|EPIPE|UND_ERR_SOCKET|connection/i;

/** The cause one failed attempt (or, without attempt spans, the call itself) shows. */
function causeOf(status: number | undefined, ...texts: (string | undefined)[]): FailureCause {
  if (status === 429) return "rate_limit";
  if (status !== undefined && status >= 500) return "provider_error";
  const text = texts.filter(Boolean).join(" ");
  if (/\b429\b|rate.?limit/i.test(text)) return "rate_limit";
  if (TIMEOUT.test(text)) return "timeout";
  if (CONNECTION.test(text)) return "connection";
  if (/\b5\d\d\b|server error|overloaded|unavailable/i.test(text)) return "provider_error";
  if (status !== undefined && status >= 400) return "client_error";
  return "unknown";
}

const failedAttempt = (a: SpanRecord) => a.status === "error" || (num(a, ATTR_HTTP_RESPONSE_STATUS_CODE) ?? 0) >= 400;

/**
 * Every model call of a trace, each with its own HTTP attempts: the unit anomaly rules judge, so
 * a call retried three times is one call with `attempts: 3`, not three findings.
 */
export function modelCalls(spans: readonly SpanRecord[], stages: ReadonlyMap<string, string | undefined>): ModelCall[] {
  const attemptsOf = new Map<string, SpanRecord[]>();
  for (const s of spans) {
    if (!s.parentSpanId || !isHttpAttempt(s)) continue;
    const list = attemptsOf.get(s.parentSpanId);
    if (list) list.push(s);
    else attemptsOf.set(s.parentSpanId, [s]);
  }
  const out: ModelCall[] = [];
  for (const span of spans) {
    if (!span.call) continue;
    const http = (attemptsOf.get(span.spanId) ?? []).sort((a, b) => a.startMs - b.startMs);
    const retryEvents = (span.events ?? []).filter((e) => e.name === EVENT_RETRY).length;
    const attempts = Math.max(1, num(span, ATTR_LLM_ATTEMPTS) ?? 0, http.length, retryEvents + 1);
    const failed = span.status === "error";
    const last = http[http.length - 1];
    const lastStatus = last ? (num(last, ATTR_HTTP_RESPONSE_STATUS_CODE) ?? str(last, ATTR_ERROR_TYPE)) : undefined;

    let cause: FailureCause | undefined;
    if (failed) {
      // The last attempt decided the call; without attempt spans, the call's own error says it.
      cause =
        last && failedAttempt(last)
          ? causeOf(num(last, ATTR_HTTP_RESPONSE_STATUS_CODE), str(last, ATTR_ERROR_TYPE), last.statusMessage, span.statusMessage)
          : causeOf(undefined, str(span, ATTR_ERROR_TYPE), span.statusMessage);
    } else if (attempts > 1) {
      // Recovered: the earlier attempts say why it had to retry (the last failed one speaks for them).
      const failedOnes = http.filter(failedAttempt);
      const lastFailed = failedOnes[failedOnes.length - 1];
      const event = [...(span.events ?? [])].reverse().find((e) => e.name === EVENT_RETRY);
      const eventStatus = event?.attributes?.[ATTR_HTTP_RESPONSE_STATUS_CODE];
      cause = lastFailed
        ? causeOf(num(lastFailed, ATTR_HTTP_RESPONSE_STATUS_CODE), str(lastFailed, ATTR_ERROR_TYPE), lastFailed.statusMessage)
        : causeOf(typeof eventStatus === "number" ? eventStatus : undefined, String(event?.attributes?.[ATTR_ERROR_TYPE] ?? ""));
    }

    out.push({
      span: span as ModelCall["span"],
      stage: stages.get(span.spanId) ?? UNKNOWN_STAGE,
      attempts,
      failed,
      cause,
      lastStatus,
      latencyMs: last && http.length > 1 ? Math.max(0, span.endMs - last.startMs) : span.durationMs,
    });
  }
  return out;
}
