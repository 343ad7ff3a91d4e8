/** Link to a trace in the Jaeger UI: `${base}/trace/${traceId}`. */
export function jaegerTraceUrl(base: string, traceId: string): string {
  return `${base.replace(/\/+$/, "")}/trace/${encodeURIComponent(traceId)}`;
}
