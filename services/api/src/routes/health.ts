import { Router } from "express";
import type { RedisClient } from "@tracelane/runtime";
import { ROUTES } from "../api-spec/routes.js";
import { withTimeout } from "../http/errors.js";

export const READY_TIMEOUT_MS = 1_000;

/** `/healthz`: the process is up. `/readyz`: RedisClient answers PING, so requests can be served. */
export function createHealthRouter(deps: { redis: RedisClient; timeoutMs?: number }): Router {
  const timeoutMs = deps.timeoutMs ?? READY_TIMEOUT_MS;
  const router = Router();
  router.get(ROUTES.healthz.path, (_req, res) => {
    res.json({ status: "ok" });
  });
  router.get(ROUTES.readyz.path, async (_req, res) => {
    try {
      await withTimeout(deps.redis.ping(), timeoutMs, "Redis PING");
      res.json({ status: "ready", checks: { redis: "ok" } });
    } catch (err) {
      const reason = `redis: ${err instanceof Error ? err.message : String(err)}`;
      res
        .status(503)
        .set("Retry-After", "5")
        .json({ status: "unavailable", reason, checks: { redis: "unavailable" } });
    }
  });
  return router;
}
