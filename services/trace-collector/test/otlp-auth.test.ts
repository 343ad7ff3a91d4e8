import { JsonTraceSerializer, ProtobufTraceSerializer } from "@opentelemetry/otlp-transformer";
import { ApiKeys } from "@tracelane/api-keys";
import { indexSize } from "@tracelane/trace-store";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { startHttpCollector } from "./http-collector.js";
import { recordSdkTrace, uniquePrefix } from "./support.js";

const MEMBER_KEY = "otlp-member-key-0123456789";
const ADMIN_KEY = "otlp-admin-key-0123456789ab";
const keys = ApiKeys.fromEnv({ API_KEYS: `${MEMBER_KEY} sender member,${ADMIN_KEY} ops admin` });
const logged: string[] = [];
const logger = {
  info: (o: object, m?: string) => logged.push(JSON.stringify(o) + (m ?? "")),
  warn: (o: object, m?: string) => logged.push(JSON.stringify(o) + (m ?? "")),
  error: (o: object, m?: string) => logged.push(JSON.stringify(o) + (m ?? "")),
};

let open: Awaited<ReturnType<typeof startHttpCollector>>;
let keyed: Awaited<ReturnType<typeof startHttpCollector>>;
const storedTraces = () =>
  indexSize(
    open.redis,
    open.collector.assembler.keys.partitions.map((part) => part.idxStart),
  );

beforeAll(async () => {
  open = await startHttpCollector(inject("redisUrl"), uniquePrefix("otlpauth-open"), { apiKeys: keys, logger });
  keyed = await startHttpCollector(inject("redisUrl"), uniquePrefix("otlpauth-keyed"), { apiKeys: keys, metricsRequireKey: true, logger });
});
afterAll(async () => {
  await open?.close();
  await keyed?.close();
});

const json = () => Buffer.from(JsonTraceSerializer.serializeRequest(recordSdkTrace())!);
const proto = () => Buffer.from(ProtobufTraceSerializer.serializeRequest(recordSdkTrace())!);

describe("OTLP/HTTP with API_KEYS set", () => {
  it("answers 401 with an OTLP JSON Status (UNAUTHENTICATED) without a key or with an unknown one, storing nothing", async () => {
    const before = await storedTraces();
    const attempts: Record<string, string>[] = [{}, { authorization: "Bearer not-a-known-key-at-all" }, { authorization: "Token abc" }];
    for (const headers of attempts) {
      const res = await open.post(json(), "application/json", headers);
      expect(res.status).toBe(401);
      expect(res.headers.get("www-authenticate")).toMatch(/^Bearer/);
      const body = (await res.json()) as { code: number; message: string };
      expect(body.code).toBe(16);
      expect(body.message).toMatch(/Authorization: Bearer <api key>/);
    }
    expect(await storedTraces()).toBe(before);
    expect(open.collector.stats.unauthorizedRequests).toBeGreaterThanOrEqual(3);
  });

  it("answers 401 in protobuf to a protobuf sender", async () => {
    const res = await open.post(proto(), "application/x-protobuf", { authorization: "Bearer wrong-key-wrong-key-wrong" });
    expect(res.status).toBe(401);
    expect(res.headers.get("content-type")).toMatch(/application\/x-protobuf/);
    expect(Buffer.from(await res.arrayBuffer()).toString("utf8")).toMatch(/API key is not known/);
  });

  it("accepts spans with a known key, JSON and protobuf", async () => {
    const a = await open.post(json(), "application/json", { authorization: `Bearer ${MEMBER_KEY}` });
    expect(a.status).toBe(200);
    expect(await a.json()).toEqual({});
    const b = await open.post(proto(), "application/x-protobuf", { authorization: `Bearer ${ADMIN_KEY}` });
    expect(b.status).toBe(200);
  });

  it("keeps health open, and /metrics and /stats open by default", async () => {
    for (const path of ["/healthz", "/readyz", "/metrics", "/stats"]) expect((await fetch(`${open.base}${path}`)).status).toBe(200);
  });

  it("with METRICS_REQUIRE_KEY, /metrics and /stats need a key and health stays open", async () => {
    for (const path of ["/metrics", "/stats"]) {
      expect((await fetch(`${keyed.base}${path}`)).status).toBe(401);
      expect((await fetch(`${keyed.base}${path}`, { headers: { authorization: `Bearer ${MEMBER_KEY}` } })).status).toBe(200);
    }
    for (const path of ["/healthz", "/readyz"]) expect((await fetch(`${keyed.base}${path}`)).status).toBe(200);
  });

  it("never logs a key", () => {
    for (const line of logged) {
      expect(line).not.toContain(MEMBER_KEY);
      expect(line).not.toContain(ADMIN_KEY);
    }
  });
});
