import { createServer, type RequestListener, type Server } from "node:http";
import type { CountRejection } from "../limits/rejections.js";

export interface ServerTimeouts {
  /** HTTP_HEADERS_TIMEOUT_MS: the whole request head must arrive within this. */
  headersTimeoutMs: number;
  /** HTTP_REQUEST_TIMEOUT_MS: head and body must arrive within this (0 = no limit); the response is not bounded. */
  requestTimeoutMs: number;
  /** HTTP_KEEP_ALIVE_TIMEOUT_MS: an idle keep-alive connection is closed after this. */
  keepAliveTimeoutMs: number;
}

/**
 * Node checks the two request timeouts on a timer, not per socket: a slow client is cut off between
 * the timeout and the timeout plus this interval (Node's default interval is 30 s, which would let a
 * slowloris hold a connection for 30 s more than asked).
 */
const checkingInterval = (t: ServerTimeouts) =>
  Math.max(50, Math.min(1_000, Math.floor(Math.min(t.headersTimeoutMs, t.requestTimeoutMs || Infinity) / 4)));

/**
 * The api's HTTP server, hardened against slow clients (slowloris): a request head that is not complete
 * within headersTimeoutMs, or a request (head and body) not received within requestTimeoutMs, is answered
 * 408 and its connection closed by Node. These bound receiving the request only: once it is read, an
 * answer may take as long as it needs, so event streams live on (they also switch off the socket's idle
 * timeout, sse.ts). Each such cut is counted as a `request_timeout` rejection.
 */
export function createApiServer(app: RequestListener, timeouts: ServerTimeouts, countRejection?: CountRejection): Server {
  const server = createServer(
    {
      headersTimeout: timeouts.headersTimeoutMs,
      requestTimeout: timeouts.requestTimeoutMs,
      keepAliveTimeout: timeouts.keepAliveTimeoutMs,
      connectionsCheckingInterval: checkingInterval(timeouts),
    },
    app,
  );
  if (countRejection) {
    // Node answers the timeout (408) and then destroys the socket with this error: an extra listener only watches.
    server.on("connection", (socket) =>
      socket.on("error", (err: NodeJS.ErrnoException) => {
        if (err.code === "ERR_HTTP_REQUEST_TIMEOUT") countRejection("request_timeout");
      }),
    );
  }
  return server;
}
