/** Counters the collector exposes on GET /stats. */
export class CollectorStats {
  readonly startedAt = Date.now();
  entriesRead = 0;
  entriesClaimed = 0;
  entriesAcked = 0;
  /** Stream entries that were not OTLP/JSON at all (acknowledged and skipped). */
  badEntries = 0;
  spansReceived = 0;
  spansStored = 0;
  duplicateSpans = 0;
  droppedSpans = 0;
  rejectedSpans = 0;
  /** OTLP spans refused because their trace belongs to another key (an internally created trace). */
  foreignSpansRefused = 0;
  /** POST /v1/traces without a valid key (API_KEYS set). */
  unauthorizedRequests = 0;
  /** Spans stored with something cut to the limits: attribute values truncated, attributes, events or links dropped. */
  spansClamped = 0;
  /** Spans cut from their trace's tree for lying deeper than TRACELANE_MAX_TRACE_DEPTH (counted when they arrive). */
  spansTooDeep = 0;
  /** Large traces whose summary was deferred to the next assembly tick, and those ticks' re-assemblies. */
  deferredAssemblies = 0;
  tickAssemblies = 0;
  batches = 0;
  batchFailures = 0;
  traceWrites = 0;
  staleSummaryWrites = 0;
  newAnomalies = 0;
  otlpHttpRequests = 0;
  sweptTraces = 0;
  /** Completed researches whose per-stage totals joined the submit-time forecast's history. */
  forecastResearches = 0;
  lastBatchAt: number | undefined;

  snapshot() {
    const { startedAt, lastBatchAt, ...counters } = this;
    return {
      ...counters,
      uptimeSeconds: Math.round((Date.now() - startedAt) / 1000),
      lastBatchAt: lastBatchAt ? new Date(lastBatchAt).toISOString() : null,
    };
  }
}
