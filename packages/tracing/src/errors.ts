import { SpanStatusCode, type Span } from "@opentelemetry/api";

/** Record a failure once, the OpenTelemetry way: exception event, ERROR status, `error.type`. */
export function recordError(span: Span, err: unknown): void {
  const error = err instanceof Error ? err : new Error(String(err));
  span.recordException(error);
  span.setStatus({ code: SpanStatusCode.ERROR, message: error.message });
  span.setAttribute("error.type", errorType(error));
}

/** A stable, low-cardinality error type: the error's name or code. */
export function errorType(error: Error): string {
  const code = (error as { code?: unknown }).code;
  if (error.name && error.name !== "Error") return error.name;
  if (typeof code === "string" && code) return code;
  return "Error";
}
