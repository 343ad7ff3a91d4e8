import type { Request, Response } from "express";
import type { Caller } from "@tracelane/api-keys";

/**
 * The authenticated caller of this request, set by the auth middleware (`res.locals.caller`).
 * Undefined when the api runs without API keys (bound to loopback, or ALLOW_UNAUTHENTICATED=true).
 */
export const callerOf = (res: Response): Caller | undefined => res.locals.caller as Caller | undefined;

/** Who a rate limit or spend cap counts against: the key's id, or the client address when keys are off. */
export const limitSubject = (req: Request, res: Response): string => callerOf(res)?.id ?? `ip:${req.ip ?? "unknown"}`;

/**
 * Whether `caller` may see a resource owned by `owner` (a key id, or undefined for one created without keys).
 * No keys configured: everything is visible. An admin sees all; a member only what its key created.
 */
export function mayAccess(caller: Caller | undefined, owner: string | undefined): boolean {
  if (caller === undefined) return true;
  if (caller.role === "admin") return true;
  return owner !== undefined && owner === caller.id;
}

/** The owner a caller's lists are limited to: its own key id for a member; undefined (everything) for an admin or without keys. */
export const listOwner = (caller: Caller | undefined): string | undefined =>
  caller === undefined || caller.role === "admin" ? undefined : caller.id;
