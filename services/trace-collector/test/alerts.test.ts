import type { AddressInfo } from "node:net";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { afterAll, afterEach, describe, expect, inject, it } from "vitest";
import { decodeOtlpJson, WebhookAlerter } from "../src/collector.js";
import { pipelineTrace, toOtlpJson } from "../src/testing/synthetic.js";
import { cleanup, connect, testAssembler, uniquePrefix } from "./support.js";

const redis = connect(inject("redisUrl"));
const prefixes: string[] = [];
afterEach(async () => {
  await cleanup(redis, ...prefixes.splice(0));
});
afterAll(async () => {
  await redis.quit();
});

/** A real local HTTP endpoint; `respond` picks the status of the n-th request (1-based). */
async function webhookServer(respond: (n: number) => number) {
  const received: unknown[] = [];
  let n = 0;
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    let body = "";
    req.on("data", (c) => (body += c));
    req.on("end", () => {
      const status = respond(++n);
      if (status < 300) received.push(JSON.parse(body));
      res.writeHead(status).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/alerts`,
    received,
    requests: () => n,
    close: () => new Promise((r) => server.close(r)),
  };
}

const slowTrace = () =>
  decodeOtlpJson(
    toOtlpJson(pipelineTrace({ stages: [{ stage: "analysis", model: "gpt-4.1", inputTokens: 10, outputTokens: 10, latencyMs: 2_500 }] })),
  ).spans;

describe("alerts", () => {
  it("POSTs each new anomaly to the webhook once, retrying a failing endpoint, and records it on the anomaly stream", async () => {
    const hook = await webhookServer((n) => (n === 1 ? 503 : 204));
    const prefix = uniquePrefix("webhook");
    prefixes.push(prefix);
    const alerter = new WebhookAlerter({ url: hook.url, baseDelayMs: 20, jaegerUiUrl: "http://jaeger:16686/" });
    const assembler = testAssembler(redis, prefix, { onNewAnomalies: (a) => alerter.enqueue(a) });
    try {
      const spans = slowTrace();
      await assembler.ingest(spans);
      await assembler.ingest(spans); // a redelivery raises no second alert
      await alerter.flush(5_000);
      expect(hook.received).toEqual([
        {
          kind: "tracelane.anomaly",
          anomaly: expect.objectContaining({
            type: "high_latency",
            traceId: spans[0]!.traceId,
            stage: "analysis",
            model: "gpt-4.1",
            value: 2_500,
            threshold: 2_000,
          }),
          links: { jaeger: `http://jaeger:16686/trace/${spans[0]!.traceId}` },
        },
      ]);
      expect(alerter.stats()).toMatchObject({ sent: 1, failed: 0, retries: 1, dropped: 0 });
      const entries = await redis.xrange(`${prefix}-anomaly-stream`, "-", "+");
      expect(entries).toHaveLength(1);
      expect(entries[0]![1].slice(0, 4)).toEqual(["type", "high_latency", "traceId", spans[0]!.traceId]);
    } finally {
      await hook.close();
    }
  });

  it("gives up on a 4xx without retrying and never blocks ingest while the webhook is down", async () => {
    const hook = await webhookServer(() => 400);
    const alerter = new WebhookAlerter({ url: hook.url, baseDelayMs: 20, maxQueue: 2, concurrency: 1 });
    const anomaly = {
      type: "error" as const,
      traceId: "t",
      spanId: "s",
      value: 1,
      threshold: 1,
      unit: "count" as const,
      message: "m",
      recommendation: "r",
      detectedAt: new Date().toISOString(),
    };
    try {
      alerter.enqueue([anomaly, anomaly, anomaly, anomaly]); // 1 in flight, 2 queued, 1 over the bound
      await alerter.flush(5_000);
      expect(alerter.stats()).toMatchObject({ sent: 0, failed: 3, retries: 0, dropped: 1 });
      expect(hook.requests()).toBe(3);
    } finally {
      await hook.close();
    }
  });
});
