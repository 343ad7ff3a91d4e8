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
  batches = 0;
  batchFailures = 0;
  traceWrites = 0;
  staleSummaryWrites = 0;
  newAnomalies = 0;
  otlpHttpRequests = 0;
  sweptTraces = 0;
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
