import { randomUUID } from "node:crypto";
import type { Router } from "express";
import type { RedisClient } from "@tracelane/runtime";
import { inject } from "vitest";
import type { StageQueues } from "@tracelane/queue-contract";
import { ResearchStore } from "@tracelane/research-store";
import { createRedis, waitForRedis } from "@tracelane/runtime";
import { createLogger } from "@tracelane/tracing";
import { composeApi } from "../src/api.js";
import { loadEnv, type Env } from "../src/env.js";
import type { SseStreams } from "../src/sse.js";

export const uid = () => randomUUID().replaceAll("-", "");

export interface TestApi {
  url: string;
  store: ResearchStore;
  queues: StageQueues;
  /** Connection to the test run's Redis, for assertions. */
  redis: RedisClient;
  researchPrefix: string;
  queuePrefix: string;
  streams: SseStreams;
  /** Research record/event keys and queue keys under this api's prefixes. */
  keys(): Promise<{ research: string[]; queue: string[] }>;
  close(): Promise<void>;
}

export interface StartOptions {
  env?: Record<string, string>;
  /** Redis URL for the store + readiness (default: the test run's Redis). */
  storeRedisUrl?: string;
  /** Redis URL for the BullMQ queues (default: the test run's Redis). */
  queueRedisUrl?: string;
  traceRouter?: Router;
  /** Wait until the connections are ready (off for "Redis is down" cases). */
  waitReady?: boolean;
  /** The rate limiter's clock (epoch ms); default Redis's. */
  rateLimitNow?: () => number;
}

/** The api wired as in index.ts with unique prefixes, listening on a free port. */
export async function startApi(opts: StartOptions = {}): Promise<TestApi> {
  const redisUrl = inject("redisUrl");
  const researchPrefix = `test-api-${uid()}:research`;
  const queuePrefix = `test-api-${uid()}`;
  const env: Env = loadEnv({
    TRACELANE_RESEARCH_PREFIX: researchPrefix,
    TRACELANE_QUEUE_PREFIX: queuePrefix,
    SSE_POLL_MS: "20",
    // Off unless a test sets them (the limit tests do): other tests send bursts from one address.
    RATE_LIMIT_PER_MINUTE: "0",
    RATE_LIMIT_NEW_RESEARCH_PER_MINUTE: "0",
    TRACELANE_RATE_LIMIT_PREFIX: `test-api-${uid()}:ratelimit`,
    ...opts.env,
  });
  const storeRedis = createRedis(opts.storeRedisUrl ?? redisUrl, "producer");
  const queueRedis = createRedis(opts.queueRedisUrl ?? redisUrl, "producer");
  const redis = createRedis(redisUrl, "producer");
  await waitForRedis(redis);
  if (opts.waitReady !== false) await Promise.all([waitForRedis(storeRedis), waitForRedis(queueRedis)]);

  // Built by the api's own composition root, as src/index.ts builds it.
  const api = composeApi({
    env,
    redis: storeRedis,
    queueRedis,
    logger: createLogger("api-test", { level: "silent" }),
    ...(opts.traceRouter ? { traceRouter: opts.traceRouter } : {}),
    ...(opts.rateLimitNow ? { rateLimitNow: opts.rateLimitNow } : {}),
  });
  const port = await api.start({ port: 0, host: "127.0.0.1" });
  const { queues, streams } = api;

  const keys = async () => ({
    research: await redis.keys(`${researchPrefix}:*`),
    queue: await redis.keys(`${queuePrefix}:*`),
  });

  return {
    url: `http://127.0.0.1:${port}`,
    store: new ResearchStore(redis, { prefix: researchPrefix }),
    queues,
    redis,
    researchPrefix,
    queuePrefix,
    streams,
    keys,
    close: async () => {
      await api.close();
      const { research, queue } = await keys();
      if (research.length + queue.length) await redis.del(...research, ...queue);
      for (const r of [storeRedis, queueRedis, redis]) r.disconnect();
    },
  };
}

export async function postResearch(
  api: TestApi,
  body: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; headers: Headers; body: any }> {
  const res = await fetch(`${api.url}/v1/research`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
  return { status: res.status, headers: res.headers, body: await res.json() };
}

/** Job counts of the analysis queue (every other queue must stay empty at the api). */
export async function analysisCounts(api: TestApi) {
  return api.queues.queue("analysis").getJobCounts("waiting", "active", "delayed", "completed", "failed", "prioritized");
}

export interface SseMessage {
  id?: string;
  event?: string;
  data?: string;
}

/** Read an SSE response to its end (or until `until` says stop), returning its messages and comments. */
export async function readSse(
  res: Response,
  opts: { until?: (messages: SseMessage[], comments: string[]) => boolean; timeoutMs?: number } = {},
): Promise<{ messages: SseMessage[]; comments: string[]; ended: boolean }> {
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  const messages: SseMessage[] = [];
  const comments: string[] = [];
  let buffer = "";
  let ended = false;
  let timedOut = false;
  const deadline = setTimeout(() => {
    timedOut = true;
    void reader.cancel();
  }, opts.timeoutMs ?? 10_000);
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) {
        ended = !timedOut;
        break;
      }
      buffer += value;
      let sep: number;
      while ((sep = buffer.indexOf("\n\n")) !== -1) {
        const block = buffer.slice(0, sep);
        buffer = buffer.slice(sep + 2);
        const msg: SseMessage = {};
        let isMessage = false;
        for (const line of block.split("\n")) {
          if (line.startsWith(":")) comments.push(line.slice(1).trim());
          else {
            const i = line.indexOf(":");
            const field = line.slice(0, i);
            const val = line.slice(i + 1).replace(/^ /, "");
            if (field === "id" || field === "event" || field === "data") {
              msg[field] = val;
              isMessage = true;
            }
          }
        }
        if (isMessage) messages.push(msg);
      }
      if (opts.until?.(messages, comments)) {
        await reader.cancel();
        break;
      }
    }
  } finally {
    clearTimeout(deadline);
  }
  return { messages, comments, ended };
}
