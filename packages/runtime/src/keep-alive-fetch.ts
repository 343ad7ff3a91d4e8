import { Readable } from "node:stream";
import zlib from "node:zlib";
import { Agent, fetch as undiciFetch, type Dispatcher } from "undici";

export interface KeepAliveFetchOptions {
  /** Open connections per origin; requests beyond it wait for a free one. Default 256. */
  connections?: number;
  /**
   * How long an idle pooled connection is kept when the server sends no `Keep-Alive: timeout=N`
   * hint. Default 4,000 ms: below the 5 s idle timeout of Node's and express's servers, so we
   * close first. With a hint, undici keeps it `hint - 1 s` at most.
   */
  keepAliveTimeoutMs?: number;
  /** Used for what this transport does not handle itself (a Request object, streamed or form bodies). Default: undici's fetch on the same pool. */
  fallback?: typeof fetch;
}

export type KeepAliveFetch = typeof fetch & {
  /** Close every pooled connection (in-flight requests finish first). */
  close(): Promise<void>;
};

/** Statuses whose response may not carry a body (the Response constructor throws otherwise). */
const NULL_BODY_STATUS = new Set([101, 103, 204, 205, 304]);
const DECODERS: Record<string, (body: Uint8Array) => Uint8Array> = {
  gzip: (b) => zlib.gunzipSync(b),
  "x-gzip": (b) => zlib.gunzipSync(b),
  deflate: (b) => zlib.inflateSync(b),
  br: (b) => zlib.brotliDecompressSync(b),
};
/** Subtracted from the server's keep-alive hint, so the client drops an idle connection before the server does. */
const HINT_MARGIN_MS = 1_000;

/**
 * A `fetch` for request/response JSON APIs such as a model provider's, over
 * an undici `Agent` (connection pool, keep-alive, HTTP parsing: undici's).
 *
 * Why not node:http's Agent: on Node 20 it ignores the server's
 * `Keep-Alive: timeout=5` hint unless the agent has its own `timeout`, so
 * idle sockets outlive the server's; a busy worker then sends requests on
 * sockets the server has just closed and gets ECONNRESET before the server
 * sees anything — the client-side burst that opened the breaker in `pnpm
 * bench` (issue 10). undici honours the hint and closes idle connections
 * before the server's timeout.
 *
 * Why not undici's `fetch` directly: the WHATWG fetch layer costs ~0.3 ms more
 * CPU per request than `Dispatcher.request` (measured 0.50 vs 0.18-0.22 ms on
 * this machine), and a stage worker makes one such request per job. So the
 * body is sent from a string or bytes and the whole response body is read
 * before the Response resolves (no streaming); anything else goes to
 * `fallback` (undici's fetch on the same pool).
 *
 * Behaves like fetch where callers look: rejects with the signal's reason (an
 * AbortError) when aborted, with a TypeError("fetch failed", { cause }) when
 * the connection fails, and resolves with any HTTP status.
 */
export function createKeepAliveFetch(opts: KeepAliveFetchOptions = {}): KeepAliveFetch {
  const agent = new Agent({
    connections: opts.connections ?? 256,
    keepAliveTimeout: opts.keepAliveTimeoutMs ?? 4_000,
    keepAliveTimeoutThreshold: HINT_MARGIN_MS,
  });
  const dispatcher: Dispatcher = agent;
  const fallback =
    opts.fallback ??
    (((input: string | URL | Request, init?: RequestInit) =>
      undiciFetch(input as never, { ...(init as object), dispatcher } as never)) as unknown as typeof fetch);

  const keepAliveFetch = async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const body = init?.body;
    if (
      input instanceof Request ||
      !(body === undefined || body === null || typeof body === "string" || body instanceof Uint8Array || body instanceof ArrayBuffer)
    ) {
      return fallback(input, init);
    }
    // Like fetch: a bad URL or header (a TypeError) rejects the promise (this function is async).
    const url = input instanceof URL ? input : new URL(input);
    if (url.protocol !== "http:" && url.protocol !== "https:") return fallback(input, init);
    const signal = init?.signal ?? undefined;
    if (signal?.aborted) throw abortReason(signal);

    const headers: Record<string, string> = {};
    new Headers(init?.headers).forEach((value, name) => {
      headers[name] = value;
    });
    // Ask for identity; a caller that chose an encoding gets fetch's own decoding.
    if (headers["accept-encoding"] !== undefined) return fallback(input, init);
    headers["accept-encoding"] = "identity";

    let res: Dispatcher.ResponseData;
    let payload: Uint8Array;
    try {
      res = await dispatcher.request({
        origin: url.origin,
        path: url.pathname + url.search,
        method: (init?.method ?? "GET") as Dispatcher.HttpMethod,
        headers,
        body: body === undefined || body === null ? null : body instanceof ArrayBuffer ? new Uint8Array(body) : body,
        signal: signal ?? null,
      });
      // An event stream (a streamed completion) is handed over as it arrives: its reader acts on each event.
      if (String(res.headers["content-type"] ?? "").startsWith("text/event-stream") && !res.headers["content-encoding"]) {
        const streamed = new Response(Readable.toWeb(res.body) as ReadableStream<Uint8Array>, {
          status: res.statusCode,
          headers: headersOf(res.headers, false),
        });
        Object.defineProperty(streamed, "url", { value: url.href });
        return streamed;
      }
      payload = new Uint8Array(await res.body.arrayBuffer());
    } catch (err) {
      if (signal?.aborted) throw abortReason(signal);
      throw new TypeError("fetch failed", { cause: err });
    }
    // A server may compress anyway; the body handed over is decoded and complete.
    const decode = DECODERS[String(res.headers["content-encoding"] ?? "").toLowerCase()];
    if (decode) {
      try {
        payload = decode(payload);
      } catch (err) {
        throw new TypeError("fetch failed", { cause: err });
      }
    }
    const response = new Response(NULL_BODY_STATUS.has(res.statusCode) ? null : payload, {
      status: res.statusCode,
      headers: headersOf(res.headers, Boolean(decode)),
    });
    Object.defineProperty(response, "url", { value: url.href });
    return response;
  };
  return Object.assign(keepAliveFetch as typeof fetch, { close: () => agent.close() });
}

/** undici's response headers as fetch Headers; without the encoding and length of a body we decoded. */
function headersOf(raw: Dispatcher.ResponseData["headers"], decoded: boolean): Headers {
  const headers = new Headers();
  for (const [name, value] of Object.entries(raw)) {
    if (value === undefined || (decoded && (name === "content-encoding" || name === "content-length"))) continue;
    if (Array.isArray(value)) for (const v of value) headers.append(name, v);
    else headers.append(name, value);
  }
  return headers;
}

function abortReason(signal: AbortSignal): unknown {
  return signal.reason ?? new DOMException("This operation was aborted", "AbortError");
}
