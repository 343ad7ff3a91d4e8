export interface ServerSentEvent {
  id?: string;
  event: string;
  data: string;
}

/**
 * Read a text/event-stream response event by event until the server closes it
 * (or `signal` aborts). Comments (heartbeats) are skipped.
 */
export async function* readServerSentEvents(
  url: string,
  init: { headers?: Record<string, string>; signal?: AbortSignal } = {},
): AsyncGenerator<ServerSentEvent> {
  const res = await fetch(url, {
    headers: { accept: "text/event-stream", ...init.headers },
    ...(init.signal ? { signal: init.signal } : {}),
  });
  if (!res.ok || !res.body) throw new Error(`GET ${url} -> ${res.status}: ${await res.text()}`);
  const decoder = new TextDecoder();
  let buffer = "";
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    buffer += decoder.decode(chunk, { stream: true });
    let sep: number;
    while ((sep = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, sep);
      buffer = buffer.slice(sep + 2);
      const event: ServerSentEvent = { event: "message", data: "" };
      const data: string[] = [];
      for (const line of block.split("\n")) {
        if (line.startsWith(":")) continue;
        const colon = line.indexOf(":");
        const field = colon < 0 ? line : line.slice(0, colon);
        const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
        if (field === "event") event.event = value;
        else if (field === "data") data.push(value);
        else if (field === "id") event.id = value;
      }
      if (data.length === 0) continue;
      event.data = data.join("\n");
      yield event;
    }
  }
}
