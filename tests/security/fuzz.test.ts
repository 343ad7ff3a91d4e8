import { randomBytes } from "node:crypto";
import protobuf from "protobufjs";
import { describe, expect, it } from "vitest";
import { ONE_OF_EACH } from "@tracelane/launcher";
import { RESEARCH_PARTITIONS, researchIndexKeys } from "@tracelane/research-store";
import { OTLP_TRACE_PROTO_FILES, SPAN_STREAM_SHARDS_DEFAULT, spanStreamShards } from "@tracelane/tracing";
import { modelCallsOfResearch, spansOfResearch } from "../support/spans.js";
import { apiClient } from "../support/api-client.js";
import { waitForCollectedTrace } from "../support/collected-traces.js";
import { usePipeline } from "../support/pipeline-stack.js";

/**
 * A bounded fuzz of every boundary a stranger reaches: the api's routes (from its own OpenAPI document, so a new
 * route or parameter is fuzzed without touching this file) with hostile bodies, headers, ids and query values, and
 * the collector's OTLP endpoint with mutated JSON and protobuf. Deterministic: FUZZ_SEED replays a run.
 */
const SEED = Number(process.env.FUZZ_SEED ?? 20261202);
const API_REQUESTS = 2_400;
const OTLP_REQUESTS = 1_000;
const CONCURRENCY = 8;

function prng(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    next,
    int: (n: number) => Math.floor(next() * n),
    pick: <T>(xs: readonly T[]): T => xs[Math.floor(next() * xs.length)]!,
    chance: (p: number) => next() < p,
  };
}
const rnd = prng(SEED);

const HEX32 = () => randomBytesHex(16);
const HEX16 = () => randomBytesHex(8);
function randomBytesHex(n: number) {
  let s = "";
  for (let i = 0; i < n * 2; i++) s += "0123456789abcdef"[rnd.int(16)];
  return s;
}

/** Values that broke parsers somewhere once. Each is a string; the generators below also send other JSON types. */
const NASTY: readonly string[] = [
  "",
  " ",
  "-1",
  "0",
  "1e400",
  "-0",
  "NaN",
  "Infinity",
  "0x10",
  "1e2",
  " 16",
  "9999999999999999",
  "99999999999999999999999",
  "2026-13-45T99:99:99Z",
  "1970-01-01T00:00:00Z",
  "275760-09-13T00:00:00.001Z",
  "%00",
  "\u0000",
  "\u200b",
  "\ud800",
  "💥",
  "null",
  "true",
  "[]",
  "{}",
  "[object Object]",
  "__proto__",
  "constructor",
  "../../../../etc/passwd",
  "' OR 1=1 --",
  "<script>alert(1)</script>",
  "${jndi:ldap://x}",
  "x".repeat(5_000),
  "a:b:c",
  "0".repeat(32),
  "Z".repeat(32),
];

const nastyValue = (): unknown =>
  rnd.pick<() => unknown>([
    () => rnd.pick(NASTY),
    () => (rnd.int(2) === 0 ? -rnd.next() * 1e12 : rnd.next() * 1e308),
    () => null,
    () => rnd.chance(0.5),
    () => [rnd.pick(NASTY), 1],
    () => ({ __proto__: { polluted: true }, constructor: { prototype: { x: 1 } } }),
    () => JSON.parse('{"__proto__": {"polluted": true}}'),
    () => Array.from({ length: 50 }, () => ({ a: [[[[rnd.pick(NASTY)]]]] })),
    () => rnd.int(1_000_000),
  ])();

/** A header value fetch can send (visible ASCII; undici refuses control characters, as a client's stack would). */
const headerValue = () =>
  rnd.pick([
    () => rnd.pick(NASTY.filter((v) => /^[\x20-\x7e]*$/.test(v))),
    () => `00-${HEX32()}-${HEX16()}-0${rnd.int(4)}`,
    () => `ff-${HEX32()}-${HEX16()}-01`,
    () => `00-${"0".repeat(32)}-${HEX16()}-01`,
    () => randomBytes(rnd.int(40)).toString("base64"),
    () => `Bearer ${randomBytes(rnd.int(40)).toString("hex")}`,
    () => "1-0",
    () => `${Date.now()}-${rnd.int(10)}`,
  ])();

const HEADER_NAMES = [
  "idempotency-key",
  "last-event-id",
  "traceparent",
  "tracestate",
  "baggage",
  "authorization",
  "accept",
  "content-type",
  "x-request-id",
  "range",
  "if-none-match",
  "origin",
  "x-forwarded-for",
];

/** encodeURIComponent, except that a lone surrogate (which it cannot encode) goes as the raw bytes a client could send. */
function percentEncoded(v: string): string {
  try {
    return encodeURIComponent(v);
  } catch {
    return "%ED%A0%80";
  }
}

interface Operation {
  method: string;
  path: string;
  params: Array<{ name: string; in: string; schema?: { enum?: unknown[]; type?: string } }>;
}

function operationsOf(spec: { paths: Record<string, Record<string, { parameters?: Operation["params"] }>> }): Operation[] {
  const ops: Operation[] = [];
  for (const [path, item] of Object.entries(spec.paths)) {
    for (const [method, op] of Object.entries(item)) {
      if (["get", "post", "put", "patch", "delete", "head", "options"].includes(method)) {
        ops.push({ method: method.toUpperCase(), path, params: op.parameters ?? [] });
      }
    }
  }
  return ops;
}

const validResearch = () => ({
  query: rnd.pick(["Why is the sky blue?", "How do tides work? Cite measurements.", "é".repeat(10)]),
  options: { models: { analysis: "gpt-4.1", factcheck: "gemini-2.5-flash" }, maxCostUsd: 1 },
});

/** A research body mutated at one or more places, or something that is not one at all. */
function researchBody(): { body: string | Uint8Array; type: string } {
  const kind = rnd.int(10);
  if (kind === 0) return { body: rnd.pick(['{"query":', "{", "[", "nul", "\u0000", '{"query":"x"}}', "'a'"]), type: "application/json" };
  if (kind === 1)
    return { body: randomBytes(rnd.int(300)), type: rnd.pick(["application/json", "application/octet-stream", "text/plain"]) };
  if (kind === 2) return { body: JSON.stringify({ query: "x".repeat(70_000 + rnd.int(10_000)) }), type: "application/json" };
  const body: Record<string, unknown> = validResearch();
  const options = () =>
    typeof body.options === "object" && body.options !== null
      ? (body.options as Record<string, unknown>)
      : ((body.options = {}) as Record<string, unknown>);
  const mutations = 1 + rnd.int(3);
  for (let i = 0; i < mutations; i++) {
    const where = rnd.int(6);
    if (where === 0) body.query = nastyValue();
    else if (where === 1) body.options = nastyValue();
    else if (where === 2) options().maxCostUsd = nastyValue();
    else if (where === 3) options().models = { [rnd.pick(["analysis", "synthesis", "nope", "__proto__"])]: nastyValue() };
    else if (where === 4) body[rnd.pick(["extra", "__proto__", "constructor", "id", "owner"])] = nastyValue();
    else delete body.query;
  }
  return {
    body: JSON.stringify(body),
    type: rnd.pick(["application/json", "application/json", "application/merge-patch+json", "text/json"]),
  };
}

interface Finding {
  request: string;
  status: number;
  body: string;
}

async function pool<T>(items: readonly T[], n: number, run: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: n }, async () => {
      while (next < items.length) await run(items[next++]!);
    }),
  );
}

// With API keys on (the api and the collector), as a deployment on a network runs: most fuzzed requests carry the
// key, so they reach the handlers; the rest exercise authentication.
const FUZZ_KEY = `fuzz-admin-${randomBytes(12).toString("hex")}`;
const run = usePipeline({ replicas: { ...ONE_OF_EACH }, env: { COLLECTOR_BLOCK_MS: "100", API_KEYS: `${FUZZ_KEY} fuzzer admin` } });
const withKey = (headers: Record<string, string>) => {
  if (!("authorization" in headers) && rnd.chance(0.9)) headers.authorization = `Bearer ${FUZZ_KEY}`;
  return headers;
};

describe(`bounded fuzz (seed ${SEED})`, () => {
  it("answers thousands of hostile api and OTLP requests with no 5xx, enqueues nothing for a rejected one, and still assembles real traces", async () => {
    const base = run.stack.apiUrl!;
    const collector = run.stack.collectorUrl!;
    const spec = (await (await fetch(`${base}/openapi.json`, { headers: { authorization: `Bearer ${FUZZ_KEY}` } })).json()) as Parameters<
      typeof operationsOf
    >[0];
    const ops = operationsOf(spec);
    expect(ops.length).toBeGreaterThanOrEqual(8);

    const findings: Finding[] = [];
    const unclear: Finding[] = [];
    const accepted = new Set<string>();
    const knownTraceIds: string[] = [];
    let sent = 0;

    const record = async (label: string, res: Response, api = true) => {
      sent++;
      const text = await res.text().catch(() => "");
      if (res.status >= 500) findings.push({ request: label, status: res.status, body: text.slice(0, 300) });
      // A /v1 refusal says what was wrong: a JSON error with a stable code and a message.
      // (The collector answers in OTLP's google.rpc.Status shape instead.)
      else if (api && res.status >= 400 && label.includes(" /v1/") && !label.startsWith("HEAD")) {
        try {
          const err = (JSON.parse(text) as { error?: { code?: unknown; message?: unknown } }).error;
          if (typeof err?.code !== "string" || typeof err.message !== "string" || err.message.length < 10) throw new Error("no");
        } catch {
          unclear.push({ request: label, status: res.status, body: text.slice(0, 300) });
        }
      }
      return text;
    };

    // One real research first, so ids and trace ids that exist are in the mix.
    const seeded = await apiClient(base, { apiKey: FUZZ_KEY }).submit({ query: "What is the boiling point of water at altitude?" });
    expect(seeded.status).toBe(202);
    accepted.add(seeded.body.id);
    knownTraceIds.push(seeded.body.traceId);

    const pathParam = (name: string) =>
      rnd.pick([
        () => rnd.pick([...accepted]),
        () => knownTraceIds[0]!,
        () => (name.toLowerCase().includes("trace") ? HEX32() : HEX32().slice(0, 32)),
        () => {
          const v = rnd.pick(NASTY);
          return percentEncoded(v) || "%20";
        },
        () => "%2e%2e%2f%2e%2e%2fetc",
        () => "a".repeat(300),
        () => "%E0%A4%A",
      ])();

    const queryValue = (p: Operation["params"][number]) =>
      rnd.chance(0.3) && p.schema?.enum?.length ? String(rnd.pick(p.schema.enum)) : String(rnd.pick(NASTY));

    const apiRequests = Array.from({ length: API_REQUESTS }, (_, i) => i);
    await pool(apiRequests, CONCURRENCY, async () => {
      const op = rnd.chance(0.06)
        ? {
            method: rnd.pick(["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]),
            path: rnd.pick([
              "/v1/nope",
              "/v1/research/x/y/z",
              "/v1//research",
              "/admin/queues/api/queues",
              "/ui/../../package.json",
              "/%",
              "/v1/traces/%zz",
            ]),
            params: [],
          }
        : rnd.pick(ops);
      const method = rnd.chance(0.05) ? rnd.pick(["PUT", "PATCH", "DELETE", "POST", "GET"]) : op.method;
      const path = op.path.replace(/\{(\w+)\}/g, (_m, name: string) => pathParam(name));
      const qs = new URLSearchParams();
      for (const p of op.params.filter((x) => x.in === "query")) {
        if (rnd.chance(0.5)) qs.append(p.name, queryValue(p));
        if (rnd.chance(0.05)) qs.append(p.name, queryValue(p)); // repeated: an array in express
      }
      if (rnd.chance(0.1)) qs.append(rnd.pick(["limit", "cursor", "since", "until", "__proto__", "x"]), rnd.pick(NASTY));
      const headers: Record<string, string> = {};
      for (let h = rnd.int(4); h > 0; h--) headers[rnd.pick(HEADER_NAMES)] = headerValue();
      withKey(headers);
      let body: string | Uint8Array | undefined;
      if (method === "POST" || method === "PUT" || method === "PATCH") {
        const b = researchBody();
        body = b.body;
        headers["content-type"] ??= b.type;
      }
      const url = `${base}${path}${qs.size ? `?${qs}` : ""}`;
      const label = `${method} ${path}${qs.size ? `?${qs}`.slice(0, 200) : ""} ${JSON.stringify(headers).slice(0, 200)}`;
      let res: Response;
      try {
        res = await fetch(url, { method, headers, ...(body !== undefined ? { body } : {}), signal: AbortSignal.timeout(3_000) });
      } catch (err) {
        // A stream that stays open (the events of a running research) is not a failure; anything else is.
        if ((err as Error).name === "TimeoutError" && path.endsWith("/events")) return;
        findings.push({ request: label, status: 0, body: String(err) });
        return;
      }
      if (res.headers.get("content-type")?.startsWith("text/event-stream")) {
        sent++;
        await res.body?.cancel();
        return;
      }
      const text = await record(label, res);
      if (method === "POST" && path === "/v1/research" && res.status < 300) {
        const parsed = JSON.parse(text) as { id: string; traceId: string | null };
        accepted.add(parsed.id);
        if (parsed.traceId) knownTraceIds.push(parsed.traceId);
      }
    });

    // The collector: OTLP/JSON and OTLP/protobuf, valid and mutated.
    const root = new protobuf.Root();
    for (const file of OTLP_TRACE_PROTO_FILES) protobuf.parse(file, root, { keepCase: false });
    root.resolveAll();
    const Request = root.lookupType("opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest");
    const now = BigInt(Date.now()) * 1_000_000n;
    const otlpJson = () => {
      const traceId = rnd.chance(0.3) ? knownTraceIds[0]! : HEX32();
      const attr = () => ({
        key: rnd.pick([
          "gen_ai.usage.input_tokens",
          "gen_ai.request.model",
          "gen_ai.usage.output_tokens",
          "tracelane.cost_usd",
          rnd.pick(NASTY),
        ]),
        value: rnd.pick([
          { intValue: String(rnd.int(1e6)) },
          { stringValue: rnd.pick(NASTY) },
          { doubleValue: rnd.pick([1e308, -1, 0.5]) },
          { boolValue: true },
          nastyValue(),
        ]),
      });
      const span = () => ({
        traceId: rnd.chance(0.9) ? traceId : nastyValue(),
        spanId: rnd.chance(0.9) ? HEX16() : nastyValue(),
        ...(rnd.chance(0.5) ? { parentSpanId: HEX16() } : {}),
        name: rnd.chance(0.9) ? rnd.pick(["chat gpt-4.1", "GET /x", "db"]) : nastyValue(),
        kind: rnd.pick([1, 2, 3, 99, "SPAN_KIND_CLIENT", nastyValue()]),
        startTimeUnixNano: rnd.chance(0.8) ? String(now - BigInt(rnd.int(1e9))) : nastyValue(),
        endTimeUnixNano: rnd.chance(0.8) ? String(now) : nastyValue(),
        attributes: Array.from({ length: rnd.int(8) }, attr),
        ...(rnd.chance(0.2) ? { events: [{ name: "e", timeUnixNano: String(now), attributes: [attr()] }] } : {}),
        ...(rnd.chance(0.1) ? { links: [{ traceId: HEX32(), spanId: HEX16() }] } : {}),
        status: rnd.pick([{ code: 2, message: "x" }, { code: 1 }, nastyValue()]),
      });
      return {
        resourceSpans: [
          {
            resource: { attributes: [{ key: "service.name", value: { stringValue: rnd.pick(["fuzz-svc", rnd.pick(NASTY)]) } }] },
            scopeSpans: [{ scope: { name: "fuzz" }, spans: Array.from({ length: 1 + rnd.int(6) }, span) }],
          },
        ],
      };
    };
    const validProto = () => {
      const msg = {
        resourceSpans: [
          {
            resource: { attributes: [{ key: "service.name", value: { stringValue: "fuzz-proto" } }] },
            scopeSpans: [
              {
                spans: Array.from({ length: 1 + rnd.int(4) }, () => ({
                  traceId: Buffer.from(HEX32(), "hex"),
                  spanId: Buffer.from(HEX16(), "hex"),
                  name: "chat gpt-4.1",
                  kind: 3,
                  startTimeUnixNano: String(now - 1_000_000n),
                  endTimeUnixNano: String(now),
                  attributes: [
                    { key: "gen_ai.request.model", value: { stringValue: "gpt-4.1" } },
                    { key: "gen_ai.usage.input_tokens", value: { intValue: String(rnd.int(5000)) } },
                  ],
                })),
              },
            ],
          },
        ],
      };
      return Request.encode(Request.fromObject(msg)).finish();
    };
    const mutateBytes = (b: Uint8Array) => {
      const out = Buffer.from(b);
      const how = rnd.int(4);
      if (how === 0) return out.subarray(0, rnd.int(out.length));
      if (how === 1) {
        for (let i = 1 + rnd.int(4); i > 0; i--) out[rnd.int(out.length)] = rnd.int(256);
        return out;
      }
      if (how === 2) return Buffer.concat([out, randomBytes(rnd.int(64))]);
      return out;
    };

    await pool(
      Array.from({ length: OTLP_REQUESTS }, (_, i) => i),
      CONCURRENCY,
      async (i) => {
        const proto = i % 2 === 1;
        const body = proto
          ? rnd.chance(0.1)
            ? randomBytes(rnd.int(200))
            : mutateBytes(validProto())
          : rnd.chance(0.1)
            ? rnd.pick(["{", "[]", "null", '{"resourceSpans":{}}', '{"resourceSpans":[null]}', "\u0000"])
            : JSON.stringify(otlpJson());
        const type = rnd.chance(0.05)
          ? rnd.pick(["text/plain", "application/x-www-form-urlencoded"])
          : proto
            ? "application/x-protobuf"
            : "application/json";
        const headers: Record<string, string> = withKey({ "content-type": type });
        if (rnd.chance(0.1)) headers["content-encoding"] = rnd.pick(["gzip", "deflate", "br", "nope"]);
        const label = `POST /v1/traces (collector, ${type}, ${headers["content-encoding"] ?? "identity"})`;
        try {
          const res = await fetch(`${collector}/v1/traces`, { method: "POST", headers, body, signal: AbortSignal.timeout(5_000) });
          await record(label, res, false);
        } catch (err) {
          findings.push({ request: label, status: 0, body: String(err) });
        }
      },
    );

    expect(findings, `seed ${SEED}: ${JSON.stringify(findings.slice(0, 5), null, 1)}`).toEqual([]);
    expect(unclear, `seed ${SEED}: ${JSON.stringify(unclear.slice(0, 5), null, 1)}`).toEqual([]);
    expect(sent).toBeGreaterThanOrEqual(API_REQUESTS + OTLP_REQUESTS - 50);

    // The services are still up...
    for (const url of [`${base}/healthz`, `${collector}/healthz`, `${base}/readyz`]) expect((await fetch(url)).status, url).toBe(200);

    // ...no rejected request left a record or a job: every research and every job belongs to an accepted request...
    const researchIds: string[] = [];
    for (let k = 0; k < RESEARCH_PARTITIONS; k++)
      researchIds.push(...(await run.redis.zrange(researchIndexKeys(run.stack.prefixes.research, k).all, 0, -1)));
    expect(new Set(researchIds)).toEqual(accepted);
    const spanShards = new Set(spanStreamShards(run.stack.prefixes.spans, SPAN_STREAM_SHARDS_DEFAULT));
    const jobKeys = (await run.redis.keys(`${run.stack.prefixes.queue}:*`)).filter(
      (k) => !k.startsWith(run.stack.prefixes.research) && !k.startsWith(run.stack.prefixes.traces) && !spanShards.has(k),
    );
    const jobOwners = new Set<string>();
    for (const key of jobKeys) {
      if ((await run.redis.type(key)) !== "hash") continue;
      const data = await run.redis.hget(key, "data");
      if (data) jobOwners.add((JSON.parse(data) as { researchId: string }).researchId);
    }
    for (const owner of jobOwners) expect(accepted.has(owner), `a job for research ${owner}, which no accepted request created`).toBe(true);

    // ...and the real pipeline still works end to end, its trace assembled in full.
    const api = apiClient(base, { apiKey: FUZZ_KEY });
    const after = await api.submit({ query: "After the storm: how are hurricanes categorised?" });
    expect(after.status).toBe(202);
    const finalView = await api.waitForFinal(after.body.id, 60_000);
    expect(finalView.status, JSON.stringify(finalView.error)).toBe("completed");
    const trace = await waitForCollectedTrace(base, after.body.traceId, spansOfResearch(finalView), 30_000, FUZZ_KEY);
    expect(trace.body.summary.spanCount).toBe(spansOfResearch(finalView));
    expect(trace.spans.filter((s) => s.name.startsWith("chat ")).length).toBe(modelCallsOfResearch(finalView));
  }, 240_000);
});
