import http from "node:http";

export interface WorkerHealth {
  /** Circuit breaker keys (`<baseURL>|<model>`) open or half-open now. */
  openCircuits: string[];
  /** False while every model the stage may use (its model and fallback) has its circuit open. */
  ready: boolean;
}

const HEALTHY: WorkerHealth = { openCircuits: [], ready: true };

/**
 * A tiny HTTP surface for worker processes (container HEALTHCHECK, orchestrators);
 * workers have no other. Disabled when port is 0.
 *
 * - `GET /healthz` (liveness): 200 while the process runs its worker, with
 *   `status` "ok", or "degraded" and the `openCircuits` when any model's
 *   circuit is open. Restarting a worker does not mend a provider outage, so
 *   even a worker whose every model is open stays live here (the image's and
 *   compose's healthcheck use this path).
 * - `GET /metrics`: Prometheus text format (createStageWorkerMetrics).
 * - `GET /readyz` (readiness): 200 `{"status":"ready"}`, or 503
 *   `{"status":"unavailable"}` while every model of the stage is open: route
 *   work elsewhere (another region's workers), not a reason to kill this one.
 */
export async function startHealthServer(
  port: number,
  snapshot: () => Record<string, unknown>,
  health: () => WorkerHealth = () => HEALTHY,
  metrics?: http.RequestListener,
): Promise<http.Server | undefined> {
  if (port === 0) return undefined;
  const server = http.createServer((req, res) => {
    const path = req.url?.split("?")[0];
    if (path === "/metrics" && metrics) {
      metrics(req, res);
      return;
    }
    if (path === "/healthz") {
      const { openCircuits } = health();
      send(res, 200, { status: openCircuits.length > 0 ? "degraded" : "ok", openCircuits, ...snapshot() });
      return;
    }
    if (path === "/readyz") {
      const { openCircuits, ready } = health();
      if (ready) send(res, 200, { status: "ready", openCircuits });
      else {
        send(res, 503, {
          status: "unavailable",
          openCircuits,
          reason: "every model this stage may use has its circuit breaker open; jobs wait (delayed) until one half-opens",
        });
      }
      return;
    }
    send(res, 404, { error: { code: "not_found", message: `try GET /healthz, GET /readyz${metrics ? " or GET /metrics" : ""}` } });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, () => resolve());
  });
  return server;
}

function send(res: http.ServerResponse, status: number, body: unknown) {
  res.writeHead(status, { "content-type": "application/json" });
  res.end(JSON.stringify(body));
}
