import http from "node:http";

/**
 * A tiny /healthz for worker processes (container HEALTHCHECK, orchestrators);
 * workers have no other HTTP surface. Disabled when port is 0.
 */
export async function startHealthServer(port: number, snapshot: () => Record<string, unknown>): Promise<http.Server | undefined> {
  if (port === 0) return undefined;
  const server = http.createServer((req, res) => {
    if (req.url === "/healthz" || req.url === "/metrics") {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ status: "ok", ...snapshot() }));
      return;
    }
    res.writeHead(404, { "content-type": "application/json" });
    res.end(JSON.stringify({ error: { code: "not_found", message: "try GET /healthz" } }));
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, () => resolve());
  });
  return server;
}
