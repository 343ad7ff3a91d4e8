import type { Request, Response } from "express";
import { FINAL_STATUSES, type ResearchEvent, type ResearchStore } from "@tracelane/research-store";
import type { Logger } from "@tracelane/tracing";

const FINAL_EVENTS: ReadonlySet<ResearchEvent["type"]> = new Set(["research.completed", "research.failed", "research.cancelled"]);
const PAGE = 100;

/** The open event streams, so shutdown can end them instead of waiting for clients to leave. */
export class SseStreams {
  private readonly open = new Set<() => void>();

  /** `close` asks one stream to end; it returns the unregister function the stream calls once it ended. */
  add(close: () => void): () => void {
    this.open.add(close);
    return () => this.open.delete(close);
  }

  get size(): number {
    return this.open.size;
  }

  /**
   * Ask every open stream to end; clients reconnect elsewhere with Last-Event-ID. A stream ends after the
   * read and send it is in (a stream that just opened still sends its replay first, so the client's
   * Last-Event-ID is not older than what it was shown); one waiting for the next poll ends at once. The
   * server's drain deadline bounds a stream stuck on a slow client or store.
   */
  closeAll(): void {
    for (const close of [...this.open]) close();
  }
}

/** One research event in the SSE wire format. */
export const formatEvent = (e: ResearchEvent) => `id: ${e.id}\nevent: ${e.type}\ndata: ${JSON.stringify(e)}\n\n`;

export interface EventStreamOptions {
  store: ResearchStore;
  streams: SseStreams;
  logger: Logger;
  researchId: string;
  /** Stream id to resume after ("0": from the start). */
  afterId: string;
  pollMs: number;
  heartbeatMs: number;
}

/**
 * Replay a research's events after `afterId`, then follow new ones by polling
 * the store, until a final event (completed/failed/cancelled) has been sent,
 * the client disconnects, or the server shuts down.
 */
export async function streamResearchEvents(req: Request, res: Response, opts: EventStreamOptions): Promise<void> {
  res.status(200);
  res.setHeader("Content-Type", "text/event-stream; charset=utf-8");
  res.setHeader("Cache-Control", "no-cache, no-transform");
  res.setHeader("Connection", "keep-alive");
  res.setHeader("X-Accel-Buffering", "no"); // nginx and friends: do not buffer
  res.flushHeaders();
  req.socket.setNoDelay(true);
  req.socket.setTimeout(0);

  let done = false;
  // Shutdown asked this stream to end: it does after the send in progress, never between a read and its send.
  let closing = false;
  let wake: (() => void) | undefined;
  const stop = () => {
    if (done) return;
    done = true;
    clearInterval(heartbeat);
    unregister();
    wake?.();
  };
  const finish = () => {
    stop();
    if (!res.writableEnded) res.end();
  };
  const unregister = opts.streams.add(() => {
    closing = true;
    wake?.();
  });
  const heartbeat = setInterval(() => {
    if (!done) res.write(": heartbeat\n\n");
  }, opts.heartbeatMs);
  res.on("close", stop); // client went away (or we ended): no more polling

  const write = async (chunk: string) => {
    if (res.write(chunk) || done) return;
    await new Promise<void>((resolve) => {
      const settle = () => {
        res.off("drain", settle);
        res.off("close", settle);
        resolve();
      };
      res.on("drain", settle);
      res.on("close", settle);
    });
  };

  /** Send events; true once a final event went out. */
  const send = async (events: ResearchEvent[]): Promise<boolean> => {
    for (const event of events) {
      if (done) return true;
      await write(formatEvent(event));
      cursor = event.id;
      if (FINAL_EVENTS.has(event.type)) return true;
    }
    return false;
  };

  let cursor = opts.afterId;
  try {
    while (!done) {
      const events = await opts.store.events(opts.researchId, cursor, PAGE);
      if ((await send(events)) || closing) break;
      if (events.length === PAGE) continue;
      if (events.length === 0) {
        // A final status and its event are written atomically, so once the status is final every
        // remaining event is already in the stream (this also ends a resume after the final event).
        const status = await opts.store.status(opts.researchId);
        if (status === undefined || FINAL_STATUSES.includes(status)) {
          await send(await opts.store.events(opts.researchId, cursor, 1_000));
          break;
        }
      }
      if (closing) break;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, opts.pollMs);
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      wake = undefined;
      if (closing) break;
    }
  } catch (err) {
    // The response is committed; end it so the client reconnects with Last-Event-ID.
    opts.logger.warn({ err, researchId: opts.researchId }, "event stream ended by a store error");
  } finally {
    finish();
  }
}
