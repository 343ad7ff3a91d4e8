import type * as z from "zod/mini";
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
    res = await fetch(path, { ...init, headers: { accept: "application/json", ...init?.headers } });
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
