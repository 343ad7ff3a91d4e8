import { isSpanContextValid, trace } from "@opentelemetry/api";

/** Trace id of the active span (e.g. to return to an API caller or print in an error); undefined outside a trace. */
export function currentTraceId(): string | undefined {
  const spanContext = trace.getActiveSpan()?.spanContext();
  return spanContext && isSpanContextValid(spanContext) ? spanContext.traceId : undefined;
}
