import { trace } from "@opentelemetry/api";
import { pino, type Logger } from "pino";

export type { Logger };

/**
 * JSON logs that carry `trace_id`/`span_id` of the active span, so a log line
 * leads to its trace. Secrets are redacted by path.
 */
export function createLogger(service: string, opts: { level?: string } = {}): Logger {
  return pino({
    name: service,
    level: opts.level ?? process.env.LOG_LEVEL ?? "info",
    base: { service },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: {
      paths: ["apiKey", "*.apiKey", "authorization", "*.authorization", "headers.authorization", "*.headers.authorization", "config.apiKey"],
      censor: "[redacted]",
    },
    mixin() {
      const span = trace.getActiveSpan();
      if (!span) return {};
      const { traceId, spanId, traceFlags } = span.spanContext();
      return { trace_id: traceId, span_id: spanId, trace_flags: `0${traceFlags.toString(16)}` };
    },
  });
}
