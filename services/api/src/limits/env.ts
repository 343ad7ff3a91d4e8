import { z } from "zod";
import { envInt, envOptionalString } from "@tracelane/runtime";
import type { ServerTimeouts } from "../http/server-timeouts.js";

/** CORS_ORIGINS: comma-separated origins, each exactly `scheme://host[:port]` (what a browser sends as Origin). */
const corsOrigins = () =>
  envOptionalString().transform((v, ctx): string[] => {
    const origins: string[] = [];
    for (const raw of (v ?? "").split(",").map((s) => s.trim())) {
      if (raw === "") continue;
      let url: URL | undefined;
      try {
        url = new URL(raw);
      } catch {
        url = undefined;
      }
      if (!url || !["http:", "https:"].includes(url.protocol) || url.origin.toLowerCase() !== raw.replace(/\/$/, "").toLowerCase()) {
        ctx.addIssue({
          code: "custom",
          message: `"${raw}" is not an origin: list origins such as https://app.example.com or http://localhost:5173 (scheme, host and port only: no path, no *)`,
        });
        return z.NEVER;
      }
      origins.push(url.origin);
    }
    return origins;
  });

/** Rate limits, backpressure, stream caps, slow-client timeouts and CORS (spread into the api's EnvSchema). */
export const limitsEnvShape = {
  /** Requests per minute per API key (or client address, without keys) to every /v1 route; 0 = no limit. */
  RATE_LIMIT_PER_MINUTE: envInt(600, { min: 0, max: 60_000 }),
  /** POST /v1/research per minute per API key (or client address), on top of RATE_LIMIT_PER_MINUTE; 0 = no limit. */
  RATE_LIMIT_NEW_RESEARCH_PER_MINUTE: envInt(60, { min: 0, max: 60_000 }),
  /** Redis key prefix of the rate limits; api replicas with the same prefix share them. */
  TRACELANE_RATE_LIMIT_PREFIX: z
    .string()
    .regex(/^[A-Za-z0-9_.:-]{1,100}$/, "must be 1-100 characters of [A-Za-z0-9_.:-]")
    .default("tracelane:ratelimit"),
  /** POST /v1/research answers 503 queue_full while any stage queue has this many jobs waiting; 0 = no limit. */
  MAX_QUEUE_DEPTH: envInt(1_000, { min: 0 }),
  /** How long one reading of the queues' depths is reused, ms (a burst of POSTs reads them once); 0 = every POST reads. */
  QUEUE_DEPTH_CACHE_MS: envInt(500, { min: 0, max: 60_000 }),
  /** Open event streams per API key (or client address) per api process; 0 = no cap. */
  MAX_SSE_STREAMS_PER_KEY: envInt(20, { min: 0 }),
  /** Open event streams per api process; 0 = no cap. */
  MAX_SSE_STREAMS: envInt(1_000, { min: 0 }),
  /** A request head (line and headers) must arrive within this, ms. */
  HTTP_HEADERS_TIMEOUT_MS: envInt(10_000, { min: 100, max: 600_000 }),
  /** A whole request (head and body) must arrive within this, ms; the answer (an event stream) is not bounded. 0 = no limit. */
  HTTP_REQUEST_TIMEOUT_MS: envInt(30_000, { min: 0, max: 3_600_000 }),
  /** An idle keep-alive connection is closed after this, ms (above your load balancer's idle timeout). */
  HTTP_KEEP_ALIVE_TIMEOUT_MS: envInt(5_000, { min: 0, max: 600_000 }),
  /** Origins allowed to call the api from a browser (CORS); unset: none, no Access-Control-* headers. */
  CORS_ORIGINS: corsOrigins(),
} as const;

type LimitsEnv = z.infer<z.ZodObject<typeof limitsEnvShape>>;

/** Cross-field check for the api's EnvSchema (Node refuses a head timeout longer than the request timeout). */
export function checkLimitsEnv(env: LimitsEnv, ctx: z.RefinementCtx): void {
  if (env.HTTP_REQUEST_TIMEOUT_MS > 0 && env.HTTP_HEADERS_TIMEOUT_MS > env.HTTP_REQUEST_TIMEOUT_MS) {
    ctx.addIssue({
      code: "custom",
      path: ["HTTP_HEADERS_TIMEOUT_MS"],
      message: `must not be longer than HTTP_REQUEST_TIMEOUT_MS (${env.HTTP_REQUEST_TIMEOUT_MS})`,
    });
  }
}

export interface LimitsConfig {
  rateLimitPerMinute: number;
  newResearchPerMinute: number;
  rateLimitPrefix: string;
  maxQueueDepth: number;
  queueDepthCacheMs: number;
  sseStreams: { perKey: number; total: number };
  corsOrigins: string[];
  server: ServerTimeouts;
}

export function limitsConfig(env: LimitsEnv): LimitsConfig {
  return {
    rateLimitPerMinute: env.RATE_LIMIT_PER_MINUTE,
    newResearchPerMinute: env.RATE_LIMIT_NEW_RESEARCH_PER_MINUTE,
    rateLimitPrefix: env.TRACELANE_RATE_LIMIT_PREFIX,
    maxQueueDepth: env.MAX_QUEUE_DEPTH,
    queueDepthCacheMs: env.QUEUE_DEPTH_CACHE_MS,
    sseStreams: { perKey: env.MAX_SSE_STREAMS_PER_KEY, total: env.MAX_SSE_STREAMS },
    corsOrigins: env.CORS_ORIGINS,
    server: {
      headersTimeoutMs: env.HTTP_HEADERS_TIMEOUT_MS,
      requestTimeoutMs: env.HTTP_REQUEST_TIMEOUT_MS,
      keepAliveTimeoutMs: env.HTTP_KEEP_ALIVE_TIMEOUT_MS,
    },
  };
}
