import type { Request } from "express";
import { invalidApiKey, missingApiKey } from "./errors.js";

/** The key from `Authorization: Bearer <key>`, if any. */
export function bearerKey(req: Request): string | undefined {
  const key = /^Bearer\s+(.+)$/i.exec(req.get("authorization") ?? "")?.[1]?.trim();
  return key || undefined;
}

/** Throws OpenAI's 401 unless the request carries a bearer key (the configured one, when there is one). */
export function authenticate(req: Request, apiKey: string | undefined): void {
  const presented = bearerKey(req);
  if (presented === undefined) throw missingApiKey();
  if (apiKey !== undefined && presented !== apiKey) throw invalidApiKey(presented);
}
