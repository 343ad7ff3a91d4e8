import type { RequestHandler } from "express";
import type { ApiKeys } from "@tracelane/api-keys";
import { HttpError } from "../http/errors.js";
import { callerOf } from "./caller.js";

/** The realm of every challenge; a browser keeps the key it was given for /ui and /admin under it. */
const REALM = "tracelane";

/** Paths a person opens in a browser: their 401 also offers Basic, so the browser's login prompt takes the key as password. */
const BROWSER_PATHS = ["/ui", "/admin"];
const isBrowserPath = (path: string) => BROWSER_PATHS.some((p) => path === p || path.startsWith(`${p}/`));

const HOW_TO_SEND =
  "Send an API key from the api's API_KEYS / API_KEYS_FILE as the header `Authorization: Bearer <key>` (in a browser, /ui and /admin ask for it: any user name, the key as password).";

/**
 * Every request after this middleware needs a configured API key (`Authorization: Bearer <key>`, or
 * Basic with the key as password): none or an unknown one is a 401 with `WWW-Authenticate`. The
 * caller goes to `res.locals.caller` (read it with callerOf). Without keys it lets everything through
 * and sets no caller (the api then binds to loopback unless ALLOW_UNAUTHENTICATED=true).
 * Neither the key nor the header is ever logged or echoed.
 */
export function requireApiKey(keys: ApiKeys): RequestHandler {
  return (req, res, next) => {
    if (!keys.enabled) return next();
    const auth = keys.authenticate(req.get("authorization"));
    if (auth.outcome === "ok") {
      res.locals.caller = auth.caller;
      return next();
    }
    if (isBrowserPath(req.path)) res.append("WWW-Authenticate", `Basic realm="${REALM}", charset="UTF-8"`);
    res.append("WWW-Authenticate", `Bearer realm="${REALM}"${auth.outcome === "invalid" ? ', error="invalid_token"' : ""}`);
    next(
      auth.outcome === "none"
        ? new HttpError(401, "unauthorized", `This api needs an API key. ${HOW_TO_SEND}`)
        : new HttpError(401, "invalid_api_key", `${auth.reason} ${HOW_TO_SEND}`),
    );
  };
}

/** After requireApiKey: only an admin key passes (403 for a member). Without keys everything passes. */
export function requireAdmin(what: string): RequestHandler {
  return (_req, res, next) => {
    const caller = callerOf(res);
    if (caller === undefined || caller.role === "admin") return next();
    next(
      new HttpError(
        403,
        "forbidden",
        `${what} needs an admin API key; the key "${caller.name}" is a member key. Use a key listed with the role admin in API_KEYS / API_KEYS_FILE.`,
      ),
    );
  };
}
