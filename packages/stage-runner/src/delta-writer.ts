/**
 * Gathers a streamed answer's pieces and writes them at most every `intervalMs` (and when the attempt changes),
 * so a long report is a few dozen `<stage>.delta` events, not one per token. Writes are sent one after another,
 * in order; `flush()` resolves once everything handed over is written. A failed write is dropped, not thrown:
 * the deltas are a live view, the checkpointed output is the record.
 */
export function createDeltaWriter(write: (text: string, attempt: number) => Promise<void>, intervalMs = 100) {
  let pending = "";
  let pendingAttempt = 1;
  let timer: NodeJS.Timeout | undefined;
  let chain: Promise<void> = Promise.resolve();

  const send = () => {
    if (timer) clearTimeout(timer);
    timer = undefined;
    if (!pending) return;
    const [text, attempt] = [pending, pendingAttempt];
    pending = "";
    chain = chain.then(() => write(text, attempt).catch(() => undefined));
  };

  return {
    push(text: string, attempt: number): void {
      if (attempt !== pendingAttempt) {
        send();
        pendingAttempt = attempt;
      }
      pending += text;
      timer ??= setTimeout(send, intervalMs);
    },
    async flush(): Promise<void> {
      send();
      await chain;
    },
  };
}
