import type * as z from "zod/mini";
import { authHeaders, keyRefused } from "./api-key.js";
import { ApiErrorBodySchema } from "./schemas.js";

/** An api answer the console cannot use, with a message a person can act on. */
export class ApiError extends Error {
  override readonly name = "ApiError";
  constructor(
    message: string,
    /** HTTP status; 0 when the api did not answer at all. */
    readonly status: number,
    /** The api's error code (`not_found`, `invalid_query`...), when it sent one. */
    readonly code?: string,
  ) {
    super(message);
  }
}

async function request(path: string, init?: RequestInit): Promise<{ res: Response; body: unknown }> {
  let res: Response;
  try {
    res = await fetch(path, { ...init, headers: { accept: "application/json", ...authHeaders(), ...init?.headers } });
  } catch (err) {
    throw new ApiError(
      `The api did not answer ${init?.method ?? "GET"} ${path} (${err instanceof Error ? err.message : String(err)}). Is it running?`,
      0,
    );
  }
  const text = await res.text();
  let body: unknown;
  try {
    body = text === "" ? undefined : JSON.parse(text);
  } catch {
    throw new ApiError(
      `${init?.method ?? "GET"} ${path} answered ${res.status} with a body that is not JSON: ${text.slice(0, 200)}`,
      res.status,
    );
  }
  if (!res.ok) {
    if (res.status === 401) keyRefused();
    const parsed = ApiErrorBodySchema.safeParse(body);
    throw parsed.success
      ? new ApiError(parsed.data.error.message, res.status, parsed.data.error.code)
      : new ApiError(`${init?.method ?? "GET"} ${path} answered ${res.status} ${res.statusText}`, res.status);
  }
  return { res, body };
}

function check<S extends z.ZodMiniType>(schema: S, body: unknown, what: string): z.infer<S> {
  const parsed = schema.safeParse(body);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  throw new ApiError(`${what} answered in an unexpected shape: ${issue?.path.join(".") || "body"}: ${issue?.message ?? "invalid"}`, 200);
}

export async function getJson<S extends z.ZodMiniType>(path: string, schema: S): Promise<z.infer<S>> {
  const { body } = await request(path);
  return check(schema, body, `GET ${path}`);
}

export async function postJson<S extends z.ZodMiniType>(
  path: string,
  payload: unknown,
  schema: S,
  headers: Record<string, string> = {},
): Promise<z.infer<S>> {
  const { body } = await request(path, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify(payload),
  });
  return check(schema, body, `POST ${path}`);
}

/** One server-sent event of the api (comments, i.e. heartbeats, are skipped). */
export interface StreamEvent {
  id: string | undefined;
  type: string;
  data: string;
}

interface EventStreamHandlers {
  onOpen(): void;
  onEvent(event: StreamEvent): void;
  /** The connection dropped; it is opened again (resuming after the last event) unless `closed`. */
  onError(error: ApiError, closed: boolean): void;
}

const RECONNECT_MS = 1_000;

/**
 * Follow a text/event-stream with fetch, so it carries the API key (EventSource cannot send headers):
 * reconnects after a dropped connection with Last-Event-ID, stops for good on a 4xx (401 asks for a
 * key) and when `close()` is called.
 */
export function followEventStream(path: string, handlers: EventStreamHandlers): { close(): void } {
  let closed = false;
  let lastId: string | undefined;
  let controller: AbortController | undefined;
  let retry: ReturnType<typeof setTimeout> | undefined;

  const connect = async () => {
    controller = new AbortController();
    try {
      const res = await fetch(path, {
        headers: { accept: "text/event-stream", ...authHeaders(), ...(lastId ? { "last-event-id": lastId } : {}) },
        signal: controller.signal,
      });
      if (!res.ok || !res.body) {
        if (res.status === 401) keyRefused();
        const final = res.status >= 400 && res.status < 500;
        const body = ApiErrorBodySchema.safeParse(await res.json().catch(() => undefined));
        const error = new ApiError(
          body.success ? body.data.error.message : `GET ${path} answered ${res.status}`,
          res.status,
          body.success ? body.data.error.code : undefined,
        );
        return fail(error, final);
      }
      handlers.onOpen();
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value.replace(/\r\n?/g, "\n");
        let sep: number;
        while ((sep = buffer.indexOf("\n\n")) >= 0) {
          const block = buffer.slice(0, sep);
          buffer = buffer.slice(sep + 2);
          const event: StreamEvent = { id: undefined, type: "message", data: "" };
          const data: string[] = [];
          for (const line of block.split("\n")) {
            if (line.startsWith(":")) continue;
            const colon = line.indexOf(":");
            const field = colon < 0 ? line : line.slice(0, colon);
            const val = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
            if (field === "event") event.type = val;
            else if (field === "data") data.push(val);
            else if (field === "id") event.id = val;
          }
          if (event.id !== undefined) lastId = event.id;
          if (data.length === 0) continue;
          event.data = data.join("\n");
          if (!closed) handlers.onEvent(event);
        }
      }
      fail(new ApiError("The event stream ended.", 0), false);
    } catch (err) {
      if (!closed) fail(new ApiError(`The event stream broke off (${err instanceof Error ? err.message : String(err)}).`, 0), false);
    }
  };
  const fail = (error: ApiError, final: boolean) => {
    if (closed) return;
    if (final) closed = true;
    handlers.onError(error, final);
    if (!final) retry = setTimeout(() => void connect(), RECONNECT_MS);
  };
  void connect();
  return {
    close() {
      closed = true;
      clearTimeout(retry);
      controller?.abort();
    },
  };
}
