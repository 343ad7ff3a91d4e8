import type { SpanRecord } from "@tracelane/trace-store";

interface Entry {
  version: number;
  spans: SpanRecord[];
  at: number;
}

/**
 * The spans of the traces this collector assembled last, by trace id, with
 * the version they had. A trace's spans arrive in several batches (one per
 * service, as each exporter flushes); with the previous batch's spans at hand
 * the insert script only confirms the version instead of sending the whole
 * trace back to be parsed again. Bounded by count (least recently used goes)
 * and by age, so a trace that expired and came back with the same span count
 * is never mistaken for the copy held here. Another replica writing to the
 * same trace changes its version, which the script sees: the copy is then
 * just not used.
 */
export class RecentTraces {
  private readonly entries = new Map<string, Entry>();

  constructor(
    private readonly maxTraces: number,
    private readonly maxAgeMs = 5 * 60_000,
    private readonly now: () => number = Date.now,
  ) {}

  /** The held copy, or undefined (none, or too old). */
  get(traceId: string): { version: number; spans: SpanRecord[] } | undefined {
    const entry = this.entries.get(traceId);
    if (!entry) return undefined;
    if (this.now() - entry.at > this.maxAgeMs) {
      this.entries.delete(traceId);
      return undefined;
    }
    return entry;
  }

  /** Hold `spans` as the trace at `version`, unless a newer version is already held. */
  set(traceId: string, version: number, spans: SpanRecord[]): void {
    if (this.maxTraces <= 0) return;
    const held = this.entries.get(traceId);
    if (held && held.version > version) return;
    // Re-insert so Map order is least recently written first.
    this.entries.delete(traceId);
    this.entries.set(traceId, { version, spans, at: this.now() });
    while (this.entries.size > this.maxTraces) this.entries.delete(this.entries.keys().next().value!);
  }

  get size(): number {
    return this.entries.size;
  }
}
