import { RetryLaterError } from "../http/errors.js";
import type { CountRejection } from "./rejections.js";

/** Retry-After of a refused stream: long enough for another stream of the same caller to end. */
const STREAM_RETRY_AFTER_SECONDS = 5;

/**
 * Caps on open event streams (GET /v1/research/:id/events) of this process: MAX_SSE_STREAMS_PER_KEY per
 * subject (API key, or client address without keys) and MAX_SSE_STREAMS in total; 0 = no cap. A slot is
 * taken before the stream opens and given back when its response closes, however it ends.
 */
export class SseSlots {
  private readonly bySubject = new Map<string, number>();
  private total = 0;

  constructor(
    private readonly caps: { perKey: number; total: number },
    private readonly countRejection?: CountRejection,
  ) {}

  /** Take a slot for `subject`, or throw the 429/503 to answer; the returned function frees it (once). */
  acquire(subject: string, ownedBy: "key" | "address"): () => void {
    if (this.caps.total > 0 && this.total >= this.caps.total) {
      this.countRejection?.("sse_streams_total");
      throw new RetryLaterError(
        503,
        "stream_capacity",
        `This server has ${this.caps.total} event streams open, its limit (MAX_SSE_STREAMS). Retry in ${STREAM_RETRY_AFTER_SECONDS} s, or poll GET /v1/research/{id} meanwhile.`,
        STREAM_RETRY_AFTER_SECONDS,
        { limit: this.caps.total },
      );
    }
    const open = this.bySubject.get(subject) ?? 0;
    if (this.caps.perKey > 0 && open >= this.caps.perKey) {
      this.countRejection?.("sse_streams_per_key");
      throw new RetryLaterError(
        429,
        "too_many_streams",
        `${ownedBy === "key" ? "This API key" : "This client address"} already has ${open} event streams open, the limit (MAX_SSE_STREAMS_PER_KEY). Close one (each ends by itself after the research's final event), then retry.`,
        STREAM_RETRY_AFTER_SECONDS,
        { limit: this.caps.perKey },
      );
    }
    this.bySubject.set(subject, open + 1);
    this.total += 1;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.total -= 1;
      const left = (this.bySubject.get(subject) ?? 1) - 1;
      if (left > 0) this.bySubject.set(subject, left);
      else this.bySubject.delete(subject);
    };
  }
}
