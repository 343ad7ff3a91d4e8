import type { IncomingMessage, ServerResponse } from "node:http";
import express, { type NextFunction, type Request, type Response } from "express";
import type { RedisClient } from "@tracelane/runtime";
import type { ApiKeys } from "@tracelane/api-keys";
import type { Logger } from "@tracelane/tracing";
import { indexSize, type SpanRecord } from "@tracelane/trace-store";
import type { WebhookStats } from "../alerts/webhook.js";
import type { IngestOrigin } from "../assemble/assembler.js";
import { otlpHttpRouter } from "../ingest/otlp-http.js";
import { streamLag } from "../ingest/stream-consumer.js";
import type { CollectorStats } from "../stats.js";

export interface HttpAppDeps {
  redis: RedisClient;
  stats: CollectorStats;
  /** The span stream's base name and shard count, for its lag in /stats. */
  stream: string;
  shards: number;
  group: string;
  /** Every partition's start index: the traces stored are their sum. */
  tracesIndexKeys: readonly string[];
  ingest: (spans: readonly SpanRecord[], origin: IngestOrigin) => Promise<{ refused: number }>;
  /** When enabled: POST /v1/traces needs a key; /metrics and /stats too with `metricsRequireKey`. */
  apiKeys?: ApiKeys;
  metricsRequireKey?: boolean;
  /** GET /metrics (Prometheus text format). */
  metricsHandler: (req: IncomingMessage, res: ServerResponse) => void;
  webhookStats?: () => WebhookStats;
  logger?: Pick<Logger, "warn" | "error">;
}

/**
 * /healthz (process up), /readyz (Redis answers), /stats (counters and stream lag), /metrics (Prometheus), POST /v1/traces.
 * With API keys, POST /v1/traces needs one; health stays open, /metrics and /stats are open unless `metricsRequireKey`.
 */
export function createHttpApp(deps: HttpAppDeps): express.Express {
  const app = express();
  app.disable("x-powered-by");
  const keyed = (req: Request, res: Response, next: NextFunction) => {
    if (!deps.metricsRequireKey || !deps.apiKeys?.enabled) return next();
    const auth = deps.apiKeys.authenticate(req.headers.authorization);
    if (auth.outcome === "ok") return next();
    res.setHeader("www-authenticate", 'Bearer realm="tracelane"');
    res.status(401).json({
      error: {
        code: "unauthorized",
        message: `${auth.outcome === "none" ? "The Authorization header is missing." : auth.reason} Send Authorization: Bearer <api key> (METRICS_REQUIRE_KEY=true).`,
      },
    });
  };

  app.get("/healthz", (_req, res) => {
    res.json({ status: "ok" });
  });

  app.get("/readyz", async (_req, res) => {
    try {
      await Promise.race([
        deps.redis.ping(),
        new Promise((_, reject) => setTimeout(() => reject(new Error("Redis did not answer PING within 1 s")), 1_000).unref()),
      ]);
      res.json({ status: "ready" });
    } catch (err) {
      res.status(503).json({ status: "unavailable", reason: (err as Error).message });
    }
  });

  app.get("/stats", keyed, async (_req, res, next) => {
    try {
      const [lag, traces] = await Promise.all([
        streamLag(deps.redis, deps.stream, deps.shards, deps.group),
        indexSize(deps.redis, deps.tracesIndexKeys),
      ]);
      res.json({
        ...deps.stats.snapshot(),
        tracesStored: traces,
        stream: lag,
        webhook: deps.webhookStats?.() ?? null,
      });
    } catch (err) {
      next(err);
    }
  });

  app.get("/metrics", keyed, deps.metricsHandler);

  app.use(
    otlpHttpRouter({
      ingest: deps.ingest,
      stats: deps.stats,
      ...(deps.apiKeys ? { apiKeys: deps.apiKeys } : {}),
      ...(deps.logger ? { logger: deps.logger } : {}),
    }),
  );

  app.use((_req, res) => {
    res
      .status(404)
      .json({ error: { code: "not_found", message: "Unknown path. Try /healthz, /readyz, /stats, /metrics or POST /v1/traces." } });
  });
  app.use((err: unknown, _req: Request, res: Response, _next: NextFunction) => {
    deps.logger?.error({ err }, "request failed");
    res.status(500).json({ error: { code: "internal", message: (err as Error).message ?? "internal error" } });
  });
  return app;
}
