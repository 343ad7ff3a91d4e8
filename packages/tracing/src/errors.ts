import { SpanStatusCode, type Span } from "@opentelemetry/api";
import { ATTR_CANCEL_REASON, ATTR_ERROR_TYPE, EVENT_CANCELLED } from "./attributes.js";

/** Record a failure once, the OpenTelemetry way: exception event, ERROR status, `error.type`. */
export function recordError(span: Span, err: unknown): void {
  const error = err instanceof Error ? err : new Error(String(err));
  span.recordException(error);
  span.setStatus({ code: SpanStatusCode.ERROR, message: error.message });
  span.setAttribute(ATTR_ERROR_TYPE, errorType(error));
}

const cancelledSpans = new WeakSet<Span>();

/**
 * The work of this span was cancelled from outside (not a failure of its own, and not ok): a
 * `cancelled` event, ERROR status with the reason, `error.type` "cancelled". Span wrappers leave the
 * status alone instead of marking the span OK when it returns.
 */
export function recordCancellation(span: Span, reason: string, attributes: Record<string, string | number> = {}): void {
  span.addEvent(EVENT_CANCELLED, { [ATTR_CANCEL_REASON]: reason, ...attributes });
  span.setStatus({ code: SpanStatusCode.ERROR, message: `cancelled: ${reason}` });
  span.setAttribute(ATTR_ERROR_TYPE, "cancelled");
  cancelledSpans.add(span);
}

/** Did recordCancellation mark this span? */
export const wasCancelled = (span: Span): boolean => cancelledSpans.has(span);

/** A stable, low-cardinality error type: the error's name or code. */
export function errorType(error: Error): string {
  const code = (error as { code?: unknown }).code;
  if (error.name && error.name !== "Error") return error.name;
  if (typeof code === "string" && code) return code;
  return "Error";
}
