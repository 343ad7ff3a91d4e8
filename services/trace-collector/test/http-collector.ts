import type { AddressInfo } from "node:net";
import { createServer } from "node:http";
import { loadPriceTable } from "@tracelane/pricing";
import { createCollector, DEFAULT_RULES, type CollectorOptions } from "../src/collector.js";
import { cleanup, connect } from "./support.js";

/** A collector (no consumer loop) behind a real HTTP server on a free port, under its own key prefix. */
export async function startHttpCollector(url: string, prefix: string, overrides: Partial<CollectorOptions> = {}) {
  const redis = connect(url);
  const consumerRedis = connect(url);
  const collector = createCollector({
    redis,
    consumerRedis,
    stream: `${prefix}-spans`,
    prefix,
    anomalyStream: `${prefix}-anomalies`,
    anomalyStreamMaxLen: 100,
    ttlSeconds: 600,
    maxSpansPerTrace: 5_000,
    prices: loadPriceTable(),
    rules: DEFAULT_RULES,
    consumer: "test",
    batchSize: 10,
    blockMs: 50,
    claimIdleMs: 60_000,
    claimIntervalMs: 60_000,
    deleteAcked: true,
    sweepIntervalMs: 60_000,
    ...overrides,
  });
  const server = createServer(collector.app);
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    base,
    collector,
    redis,
    post: (body: string | Uint8Array, type: string, headers: Record<string, string> = {}) =>
      fetch(`${base}/v1/traces`, { method: "POST", headers: { "content-type": type, ...headers }, body }),
    async close() {
      await new Promise((r) => server.close(r));
      await collector.assembler.close();
      await cleanup(redis, prefix);
      await Promise.all([redis.quit(), consumerRedis.quit()]);
    },
  };
}
