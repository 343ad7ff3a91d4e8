import type { RedisClient } from "@tracelane/runtime";
import { flattenTree, type SpanTreeNode, type TraceListItem } from "@tracelane/trace-store";
import { SPAN_STREAM_SHARDS_DEFAULT, spanStreamShards } from "@tracelane/tracing";
import { freePort, spawnService, waitFor, type ServiceProcess } from "@tracelane/testkit";

/** GET /v1/traces/:traceId as the api answers it. */
export interface TraceResponse {
  summary: TraceListItem;
  tree: SpanTreeNode[];
  anomalies: unknown[];
  links: Record<string, string>;
}

/** The trace as the api serves it from the collector's store, or undefined while it is unknown (404). */
export async function fetchTrace(
  apiUrl: string,
  traceId: string,
  apiKey?: string,
): Promise<{ body: TraceResponse; text: string } | undefined> {
  const res = await fetch(`${apiUrl}/v1/traces/${traceId}`, apiKey ? { headers: { authorization: `Bearer ${apiKey}` } } : {});
  if (res.status === 404) return undefined;
  const text = await res.text();
  if (!res.ok) throw new Error(`GET /v1/traces/${traceId} -> ${res.status}: ${text}`);
  return { body: JSON.parse(text) as TraceResponse, text };
}

/** Wait until the assembled trace has `spanCount` spans; returns it with its spans flattened. */
export async function waitForCollectedTrace(apiUrl: string, traceId: string, spanCount: number, timeoutMs = 20_000, apiKey?: string) {
  let last: TraceResponse | undefined;
  const found = await waitFor(
    async () => {
      const got = await fetchTrace(apiUrl, traceId, apiKey);
      last = got?.body;
      return got && got.body.summary.spanCount >= spanCount ? got : undefined;
    },
    { timeoutMs, intervalMs: 100, what: `trace ${traceId} with ${spanCount} spans from the collector` },
  ).catch((err: Error) => {
    throw new Error(
      `${err.message}; last seen: ${
        last
          ? `${last.summary.spanCount} spans: ${flattenTree(last.tree)
              .map((s) => s.name)
              .join(", ")}`
          : "404"
      }`,
    );
  });
  return { ...found, spans: flattenTree(found.body.tree) };
}

/** A span as it sits in the Redis span stream (OTLP/JSON), reduced to what the tests compare. */
export interface StreamSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  service: string;
}

/**
 * Every span currently in the stream, decoded from the `otlp` field of each entry of every shard (`stream` is
 * TRACELANE_SPAN_STREAM, the shards' base name; `shards` what the run's services write, by default theirs).
 */
export async function readSpanStream(
  redis: RedisClient,
  stream: string,
  shards = SPAN_STREAM_SHARDS_DEFAULT,
): Promise<{ entries: number; spans: StreamSpan[]; raw: string[] }> {
  const entries = (await Promise.all(spanStreamShards(stream, shards).map((key) => redis.xrange(key, "-", "+")))).flat();
  const spans: StreamSpan[] = [];
  const raw: string[] = [];
  for (const [, fields] of entries) {
    const otlp = fields[fields.indexOf("otlp") + 1]!;
    raw.push(otlp);
    const request = JSON.parse(otlp) as {
      resourceSpans: Array<{
        resource: { attributes: Array<{ key: string; value: { stringValue?: string } }> };
        scopeSpans: Array<{ spans: Array<{ traceId: string; spanId: string; parentSpanId?: string; name: string }> }>;
      }>;
    };
    for (const rs of request.resourceSpans) {
      const service = rs.resource.attributes.find((a) => a.key === "service.name")?.value.stringValue ?? "unknown_service";
      for (const ss of rs.scopeSpans) {
        for (const s of ss.spans) {
          spans.push({
            traceId: s.traceId,
            spanId: s.spanId,
            name: s.name,
            service,
            ...(s.parentSpanId ? { parentSpanId: s.parentSpanId } : {}),
          });
        }
      }
    }
  }
  return { entries: entries.length, spans, raw };
}

/**
 * A trace-collector process on the given stream/prefix, ready once /readyz answers.
 * (startStack's addReplica cannot add a service the stack was started without: it has no port for it.)
 */
export async function spawnCollector(env: Record<string, string>): Promise<ServiceProcess & { url: string }> {
  const port = await freePort();
  const proc = spawnService("trace-collector#late", "services/trace-collector/src/index.ts", {
    OTEL_SERVICE_NAME: "trace-collector",
    ...env,
    PORT: String(port),
  });
  const url = `http://127.0.0.1:${port}`;
  try {
    await waitFor(
      async () => {
        if (proc.child.exitCode !== null) throw new Error(`collector exited: ${proc.output().slice(-2000)}`);
        return (await fetch(`${url}/readyz`, { signal: AbortSignal.timeout(1_000) }).catch(() => undefined))?.ok || undefined;
      },
      { timeoutMs: 30_000, intervalMs: 100, what: "the collector to be ready" },
    );
  } catch (err) {
    await proc.stop("SIGTERM");
    throw new Error(`${(err as Error).message}\n${proc.output().slice(-2000)}`, { cause: err });
  }
  return Object.assign(proc, { url });
}

/** Every key under `prefix` with its value, as text (hashes, sets, zsets, lists, strings, streams). */
export async function dumpKeys(redis: RedisClient, pattern: string): Promise<string> {
  const out: string[] = [];
  for (const key of await redis.keys(pattern)) {
    const type = await redis.type(key);
    const value =
      type === "hash"
        ? await redis.hgetall(key)
        : type === "set"
          ? await redis.smembers(key)
          : type === "zset"
            ? await redis.zrange(key, 0, -1, "WITHSCORES")
            : type === "list"
              ? await redis.lrange(key, 0, -1)
              : type === "stream"
                ? await redis.xrange(key, "-", "+")
                : type === "string"
                  ? await redis.get(key)
                  : null;
    out.push(`${key} ${JSON.stringify(value)}`);
  }
  return out.join("\n");
}
