import type { Request, RequestHandler } from "express";
import type { RedisClient } from "@tracelane/runtime";
import { ROUTES } from "../api-spec/routes.js";
import { callerOf, limitSubject } from "../auth/caller.js";
import { isConnectionError, RetryLaterError } from "../http/errors.js";
import { ceilSeconds, rateLimitFields, RateLimiter, type RatePolicy } from "./rate-limit.js";
import type { CountRejection } from "./rejections.js";

const MINUTE_MS = 60_000;

export interface RequestRateLimitOptions {
  redis: RedisClient;
  /** TRACELANE_RATE_LIMIT_PREFIX. */
  prefix: string;
  /** RATE_LIMIT_PER_MINUTE: every /v1 request; 0 = no limit. */
  perMinute: number;
  /** RATE_LIMIT_NEW_RESEARCH_PER_MINUTE: POST /v1/research on top; 0 = no limit. */
  newResearchPerMinute: number;
  /** The limiter's clock (epoch ms); default Redis's. */
  now?: () => number;
  countRejection?: CountRejection;
}

const NEW_RESEARCH_PATH = ROUTES.createResearch.path.toLowerCase();

/** Express matches paths case-insensitively and with a trailing slash, so the limit does too. */
const isNewResearch = (req: Request) =>
  req.method === "POST" && `${req.baseUrl}${req.path}`.toLowerCase().replace(/\/+$/, "") === NEW_RESEARCH_PATH;

/**
 * Per-subject rate limits for /v1 (mount it there, after authentication): the subject is the API key
 * (limitSubject), or the client address when the api runs without keys. Every limited answer carries
 * `RateLimit-Policy` and `RateLimit`; one over a limit is a 429 `rate_limited` with `Retry-After`,
 * before any handler runs (so a refused POST creates nothing).
 *
 * Redis unreachable: the request passes unlimited (fails open). Every /v1 route needs Redis itself, so it
 * answers 503 `unavailable` anyway, and no research can be created or model call paid for without it;
 * refusing here as well would add nothing but a second outage for the routes that could still answer.
 */
export function requestRateLimit(o: RequestRateLimitOptions): RequestHandler {
  const api: RatePolicy | undefined = o.perMinute > 0 ? { name: "api", limit: o.perMinute, windowMs: MINUTE_MS } : undefined;
  const newResearch: RatePolicy | undefined =
    o.newResearchPerMinute > 0 ? { name: "new-research", limit: o.newResearchPerMinute, windowMs: MINUTE_MS } : undefined;
  if (!api && !newResearch) return (_req, _res, next) => next();
  const limiter = new RateLimiter(o.redis, { prefix: o.prefix, ...(o.now ? { now: o.now } : {}) });

  return (req, res, next) => {
    const policies = [api, isNewResearch(req) ? newResearch : undefined].filter((p): p is RatePolicy => p !== undefined);
    if (policies.length === 0) return next();
    limiter.take(limitSubject(req, res), policies).then(
      (decision) => {
        const fields = rateLimitFields(decision.states);
        res.setHeader("RateLimit-Policy", fields.policy);
        res.setHeader("RateLimit", fields.state);
        if (decision.allowed) return next();

        const refused = decision.refusedBy.includes(newResearch!) ? newResearch! : decision.refusedBy[0]!;
        o.countRejection?.(refused === newResearch ? "new_research_rate_limited" : "rate_limited");
        const retryAfter = Math.max(1, ceilSeconds(decision.retryAfterMs));
        const who = callerOf(res) ? "this API key" : "this client address";
        const what = refused === newResearch ? "new researches (POST /v1/research)" : "requests to /v1";
        next(
          new RetryLaterError(
            429,
            "rate_limited",
            `Too many ${what}: ${who} may send ${refused.limit} per minute (policy "${refused.name}"). Retry in ${retryAfter} s (Retry-After); RateLimit and RateLimit-Policy tell the quota left.`,
            retryAfter,
            { policy: refused.name, limit: refused.limit, windowSeconds: ceilSeconds(refused.windowMs) },
          ),
        );
      },
      (err: unknown) => (isConnectionError(err) ? next() : next(err)),
    );
  };
}
