import { z } from "zod";
import { ApiError, ApiUnreachableError, UsageError } from "./errors.js";

export const DEFAULT_URL = "http://127.0.0.1:3000";
/** How long one request may take (the event stream has no such limit; it has heartbeats). */
const REQUEST_TIMEOUT_MS = 15_000;

const ApiErrorBody = z.object({ error: z.object({ code: z.string(), message: z.string() }) });

/** TRACELANE_URL (or --url): an http(s) base URL; a path prefix is kept (an api behind a proxy path). */
export function parseBaseUrl(raw: string | undefined, from: string): URL {
  const value = raw?.trim() || DEFAULT_URL;
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new UsageError(`${from}: must be a URL such as ${DEFAULT_URL} (got ${JSON.stringify(value)})`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new UsageError(`${from}: must be an http:// or https:// URL (got ${JSON.stringify(value)})`);
  }
  if (!url.pathname.endsWith("/")) url.pathname += "/";
  return url;
}

const NETWORK_CAUSES: Record<string, string> = {
  ECONNREFUSED: "connection refused",
  ECONNRESET: "the connection was reset",
  ENOTFOUND: "host not found",
  EAI_AGAIN: "host not found (DNS lookup failed)",
  EHOSTUNREACH: "host unreachable",
  ENETUNREACH: "network unreachable",
  ETIMEDOUT: "connection timed out",
  UND_ERR_CONNECT_TIMEOUT: "connection timed out",
  UND_ERR_SOCKET: "the connection closed unexpectedly",
  EPROTO: "TLS/protocol error (is it http:// rather than https://?)",
};

/** Why a fetch did not get an answer, in words ("connection refused"). */
export function networkCause(err: unknown): string {
  if (err instanceof Error && (err.name === "TimeoutError" || err.name === "AbortError")) {
    return `no answer within ${REQUEST_TIMEOUT_MS / 1000} s`;
  }
  let cause: unknown = err;
  for (let depth = 0; depth < 4 && cause; depth++) {
    const code = (cause as { code?: unknown }).code;
    if (typeof code === "string") return NETWORK_CAUSES[code] ?? code;
    cause = (cause as { cause?: unknown }).cause;
  }
  return err instanceof Error ? err.message : String(err);
}

export interface ApiResponse {
  status: number;
  /** The body as received (JSON text or plain text): `--json` prints it unchanged. */
  text: string;
  /** Parsed JSON, when the body is JSON. */
  json: unknown;
}

/** The api over plain HTTP: turns "nobody there" and error answers into CliErrors with exit codes. */
export class ApiClient {
  /** `apiKey`: TRACELANE_API_KEY, sent as `Authorization: Bearer <key>` on every request (never printed). */
  constructor(
    readonly base: URL,
    private readonly apiKey?: string,
  ) {}

  /** The Authorization header for the api key, if one is set. */
  authHeaders(): Record<string, string> {
    return this.apiKey ? { authorization: `Bearer ${this.apiKey}` } : {};
  }

  /** `path` is relative to the base, e.g. `v1/research/abc`. */
  url(path: string): string {
    return new URL(path.replace(/^\//, ""), this.base).toString();
  }

  /** The api's address as a person reads it (no trailing slash). */
  get origin(): string {
    return this.base.toString().replace(/\/$/, "");
  }

  unreachable(err: unknown): ApiUnreachableError {
    return new ApiUnreachableError(
      `cannot reach the tracelane api at ${this.origin}: ${networkCause(err)} — start it with \`pnpm start\` or set TRACELANE_URL`,
    );
  }

  async request(
    path: string,
    init: { method?: string; body?: unknown; headers?: Record<string, string>; signal?: AbortSignal } = {},
  ): Promise<ApiResponse> {
    let res: Response;
    try {
      res = await fetch(this.url(path), {
        method: init.method ?? "GET",
        headers: {
          accept: "application/json, text/plain;q=0.9",
          ...(init.body !== undefined ? { "content-type": "application/json" } : {}),
          ...this.authHeaders(),
          ...init.headers,
        },
        ...(init.body !== undefined ? { body: JSON.stringify(init.body) } : {}),
        signal: init.signal ?? AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      });
    } catch (err) {
      throw this.unreachable(err);
    }
    let text: string;
    try {
      text = await res.text();
    } catch (err) {
      throw this.unreachable(err);
    }
    const isJson = (res.headers.get("content-type") ?? "").includes("json");
    let json: unknown;
    if (isJson) {
      try {
        json = JSON.parse(text);
      } catch {
        json = undefined;
      }
    }
    if (!res.ok) {
      const body = ApiErrorBody.safeParse(json);
      if (body.success) throw new ApiError(res.status, body.data.error.code, body.data.error.message);
      // A proxy's 502, another server's HTML 404: not an answer of the tracelane api.
      const type = res.headers.get("content-type")?.split(";")[0] || "no content type";
      throw new ApiUnreachableError(
        `cannot reach the tracelane api at ${this.origin}: ${init.method ?? "GET"} /${path.replace(/^\//, "")} answered HTTP ${res.status} (${type}) without a tracelane error body — is TRACELANE_URL the tracelane api?`,
      );
    }
    return { status: res.status, text, json };
  }

  /** GET a JSON resource and validate the part of it the CLI reads. */
  async getJson<S extends z.ZodType>(path: string, schema: S): Promise<{ raw: ApiResponse; data: z.infer<S> }> {
    const raw = await this.request(path);
    return { raw, data: parseBody(schema, raw, path) };
  }
}

/** The api's answer, checked: a body the CLI cannot read says so instead of printing `undefined`. */
export function parseBody<S extends z.ZodType>(schema: S, raw: ApiResponse, path: string): z.infer<S> {
  const result = schema.safeParse(raw.json);
  if (!result.success) {
    const issue = result.error.issues[0];
    throw new ApiError(
      raw.status,
      "unexpected_response",
      `the answer to ${path} is not what this CLI understands (${issue ? `${issue.path.join(".") || "body"}: ${issue.message}` : "not JSON"}); is the CLI older than the api?`,
    );
  }
  return result.data;
}
