import { randomUUID } from "node:crypto";
import type { Express } from "express";
import type { RedisClient } from "@tracelane/runtime";
import { Ajv2020, type ValidateFunction } from "ajv/dist/2020.js";
import addFormatsModule from "ajv-formats";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { composeApi, loadEnv } from "@tracelane/api/testing";
import { ONE_OF_EACH } from "@tracelane/launcher";
import { createLogger } from "@tracelane/tracing";
import { createRedis } from "@tracelane/runtime";
import { waitFor } from "@tracelane/testkit";
import { startPipeline } from "../support/pipeline-stack.js";

/**
 * GET /openapi.json describes exactly the routes the api serves, and what a real running api
 * answers (a stack of OS processes: api, workers, simulator, collector) validates against it with a
 * JSON Schema 2020-12 validator.
 */

/**
 * Routes other parts of the api mount that are not JSON endpoints, and so are not described:
 * the web console (/ui, static assets), Bull Board (/admin/queues), Prometheus text (/metrics),
 * and "/" (a redirect to the console).
 */
const NOT_DESCRIBED = { mounts: ["/ui", "/admin/queues"], routes: ["GET /metrics", "GET /"] };

const redisUrl = inject("redisUrl");
const addFormats = addFormatsModule as unknown as (ajv: Ajv2020) => void;

type Json = any;

/** "GET /v1/research/:id" for each route of the app; mounted sub-apps/routers (with a path) by their mount path. */
function servedRoutes(app: Express): { routes: string[]; mounts: string[] } {
  const routes: string[] = [];
  const mounts: string[] = [];
  const walk = (stack: Json[]) => {
    for (const layer of stack) {
      if (layer.route) {
        for (const method of Object.keys(layer.route.methods).filter((m) => m !== "_all")) {
          routes.push(`${method.toUpperCase()} ${layer.route.path}`);
        }
      } else if (Array.isArray(layer.handle?.stack)) {
        if (layer.slash) walk(layer.handle.stack);
        else mounts.push(String(layer.rawPath));
      }
    }
  };
  walk((app as Json).router.stack);
  return { routes, mounts };
}

const toExpressPath = (p: string) => p.replace(/\{([^}]+)\}/g, ":$1");
const describedRoutes = (doc: Json) =>
  Object.entries(doc.paths as Record<string, Record<string, unknown>>).flatMap(([path, ops]) =>
    Object.keys(ops).map((m) => `${m.toUpperCase()} ${toExpressPath(path)}`),
  );

describe("the OpenAPI document", () => {
  let app: Express;
  let connections: RedisClient[];
  let doc: Json;

  beforeAll(async () => {
    connections = [createRedis(redisUrl, "producer"), createRedis(redisUrl, "producer")];
    const run = randomUUID().slice(0, 8);
    const api = composeApi({
      env: loadEnv({ TRACELANE_QUEUE_PREFIX: `openapi-${run}`, TRACELANE_RESEARCH_PREFIX: `openapi-${run}:research` }),
      redis: connections[0]!,
      queueRedis: connections[1]!,
      logger: createLogger("api", { level: "silent" }),
    });
    app = api.app;
    const port = await api.start({ port: 0, host: "127.0.0.1" });
    doc = await (await fetch(`http://127.0.0.1:${port}/openapi.json`)).json();
    await api.close();
  });
  afterAll(() => connections.forEach((c) => c.disconnect()));

  it("is OpenAPI 3.1 with JSON Schema 2020-12", () => {
    expect(doc.openapi).toBe("3.1.0");
    expect(doc.jsonSchemaDialect).toBe("https://json-schema.org/draft/2020-12/schema");
    expect(Object.keys(doc.components.schemas)).toEqual(
      expect.arrayContaining(["Research", "ResearchList", "TraceDetail", "CostStats", "Error"]),
    );
  });

  it("describes every route the app serves, and only those", () => {
    const served = servedRoutes(app);
    const described = describedRoutes(doc);
    const undescribed = served.routes.filter((r) => !described.includes(r) && !NOT_DESCRIBED.routes.includes(r));
    expect(undescribed, "served but not in /openapi.json").toEqual([]);
    expect(
      described.filter((r) => !served.routes.includes(r)),
      "in /openapi.json but not served",
    ).toEqual([]);
    expect(
      served.mounts.filter((m) => !NOT_DESCRIBED.mounts.includes(m)),
      "mounted sub-apps that are neither described nor excluded",
    ).toEqual([]);
    expect(described).toEqual(
      expect.arrayContaining(["GET /v1/research", "POST /v1/research", "GET /v1/traces/:traceId", "GET /openapi.json"]),
    );
  });

  it("documents the request body with the limits the api enforces, and every query parameter of a route", () => {
    const body = doc.paths["/v1/research"].post.requestBody.content["application/json"].schema;
    expect(body).toMatchObject({ required: ["query"], additionalProperties: false, properties: { query: { maxLength: 4000 } } });
    const params = (doc.paths["/v1/research"].get.parameters as { name: string; in: string }[]).map((p) => `${p.in}:${p.name}`);
    expect(params).toEqual(["query:status", "query:since", "query:until", "query:limit", "query:cursor"]);
    const kind = doc.paths["/v1/traces"].get.parameters.find((p: Json) => p.name === "kind");
    expect(kind.schema).toMatchObject({ enum: ["research", "all"], default: "research" });
  });
});

describe("answers of a real running api", () => {
  let stack: Awaited<ReturnType<typeof startPipeline>>;
  let url: string;
  let doc: Json;
  let ajv: Ajv2020;
  const validated = new Set<string>();

  beforeAll(async () => {
    stack = await startPipeline(redisUrl, {
      replicas: { ...ONE_OF_EACH },
      // Every model call takes >= 200 ms, so a research cancelled right after it is created is still unfinished.
      // No resends of fact-check calls: a 500 on a claim's call fails that claim job's attempt, which retries.
      serviceEnv: { "llm-simulator": { LLM_SIM_LATENCY_MS: "200" }, "factcheck-worker": { LLM_MAX_RETRIES: "0" } },
    });
    url = stack.apiUrl!;
    doc = await (await fetch(`${url}/openapi.json`)).json();
    ajv = new Ajv2020({ strict: false, allErrors: true });
    addFormats(ajv);
    ajv.addSchema(doc, "tracelane-openapi");
  }, 120_000);
  afterAll(async () => {
    await stack?.stop();
  });

  const pointer = (...parts: string[]) => parts.map((p) => encodeURIComponent(p.replaceAll("~", "~0").replaceAll("/", "~1"))).join("/");
  const validators = new Map<string, ValidateFunction>();
  const validatorFor = (ref: string) => {
    let v = validators.get(ref);
    if (!v) validators.set(ref, (v = ajv.compile({ $ref: `tracelane-openapi#/${ref}` })));
    return v;
  };

  /** Call the api and check the answer against the document's response for that route and status. */
  async function call(method: string, path: string, docPath: string, init: RequestInit = {}): Promise<{ status: number; body: Json }> {
    const res = await fetch(`${url}${path}`, { method, ...init });
    const op = doc.paths[docPath]?.[method.toLowerCase()];
    expect(op, `${method} ${docPath} is described`).toBeDefined();
    const response = op.responses[String(res.status)];
    expect(response, `${method} ${path} answered ${res.status}, which ${method} ${docPath} does not document`).toBeDefined();
    const type = (res.headers.get("content-type") ?? "").split(";")[0]!;
    expect(Object.keys(response.content ?? {}), `${method} ${path} ${res.status} content type`).toContain(type);
    const base = pointer("paths", docPath, method.toLowerCase(), "responses", String(res.status), "content", type);
    let body: Json;
    if (type === "text/event-stream") {
      body = [];
      const text = await res.text();
      for (const block of text.split("\n\n")) {
        const data = block.split("\n").find((l) => l.startsWith("data: "));
        if (data) body.push(JSON.parse(data.slice(6)));
      }
      const validate = validatorFor(`${base}/x-event-data`);
      for (const event of body)
        expect(validate(event), `${method} ${path} event: ${ajv.errorsText(validate.errors)}\n${JSON.stringify(event)}`).toBe(true);
    } else {
      body = type === "application/json" ? await res.json() : await res.text();
      const validate = validatorFor(`${base}/schema`);
      expect(
        validate(body),
        `${method} ${path} ${res.status}: ${ajv.errorsText(validate.errors)}\n${JSON.stringify(body).slice(0, 2000)}`,
      ).toBe(true);
    }
    validated.add(`${method} ${docPath}`);
    return { status: res.status, body };
  }
  const json = (body: unknown, headers: Record<string, string> = {}): RequestInit => ({
    headers: { "content-type": "application/json", ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
  const finished = async (id: string) => {
    let last: unknown;
    try {
      return await waitFor(
        async () => {
          const view = (await (await fetch(`${url}/v1/research/${id}`)).json()) as { status: string };
          last = view;
          return ["completed", "failed", "cancelled"].includes(view.status) ? view : undefined;
        },
        { timeoutMs: 60_000, intervalMs: 100, what: `research ${id} to finish` },
      );
    } catch (err) {
      const { result: _r, partialResult: _p, ...view } = (last ?? {}) as Record<string, unknown>;
      throw new Error(`${(err as Error).message}; it is ${JSON.stringify(view)}`, { cause: err });
    }
  };

  it("validate for every route: researches completed, failed and cancelled, their events, traces, anomalies, costs, health", async () => {
    const key = `openapi-${randomUUID()}`;
    // A resent analysis call (an anomaly), and one claim job that fails once and is retried (claim.retrying).
    const body = {
      query: "How do heat pumps work in winter? [[sim:fault=429;model=gpt-4.1;times=1]] [[sim:fault=500;model=gemini-2.5-flash;times=1]]",
    };
    const created = await call("POST", "/v1/research", "/v1/research", json(body, { "idempotency-key": key }));
    expect(created.status).toBe(202);
    expect((await call("POST", "/v1/research", "/v1/research", json(body, { "idempotency-key": key }))).status).toBe(200);
    expect((await call("POST", "/v1/research", "/v1/research", json({ query: "other" }, { "idempotency-key": key }))).status).toBe(409);
    expect((await call("POST", "/v1/research", "/v1/research", json({ query: " ", extra: 1 }))).status).toBe(400);
    expect((await call("POST", "/v1/research", "/v1/research", json("{not json"))).status).toBe(400);
    expect((await call("POST", "/v1/research", "/v1/research", { body: "q", headers: { "content-type": "text/plain" } })).status).toBe(415);

    const cancelled = await call("POST", "/v1/research", "/v1/research", json({ query: "Cancel me" }));
    expect((await call("DELETE", `/v1/research/${cancelled.body.id}`, "/v1/research/{id}")).body.status).toBe("cancelled");
    // Fails at its last stage, after its claims were checked (a partial result with claims).
    const failing = await call("POST", "/v1/research", "/v1/research", json({ query: "Fail me [[sim:fault=401;model=deepseek-v3.2]]" }));
    // No claim can be checked (401 on every fact-check call): each ends unverifiable with its error, the research completes.
    const unchecked = await call(
      "POST",
      "/v1/research",
      "/v1/research",
      json({ query: "Check me [[sim:fault=401;model=gemini-2.5-flash]]" }),
    );

    const id = created.body.id as string;
    const traceId = created.body.traceId as string;
    expect((await finished(id)).status).toBe("completed");
    expect((await finished(failing.body.id)).status).toBe("failed");
    expect((await finished(unchecked.body.id)).status).toBe("completed");

    const views = new Map<string, Json>();
    for (const rid of [id, failing.body.id, unchecked.body.id, cancelled.body.id])
      views.set(rid, (await call("GET", `/v1/research/${rid}`, "/v1/research/{id}")).body);
    // The answers validated above hold every shape of a claim: checked, retried, and failed for good.
    const claimsOf = (rid: string) => (views.get(rid).stages.factcheck.claims ?? []) as Json[];
    expect(claimsOf(id).length).toBeGreaterThan(0);
    expect(claimsOf(id).every((c) => c.status === "checked" && c.verdict && c.usage && c.modelCalls > 0)).toBe(true);
    expect(claimsOf(id).some((c) => c.attempts === 2)).toBe(true);
    expect(views.get(failing.body.id)).toMatchObject({ error: { stage: "synthesis", type: "provider_auth" } });
    expect(claimsOf(failing.body.id).length).toBeGreaterThan(0);
    expect(claimsOf(unchecked.body.id).length).toBeGreaterThan(0);
    for (const c of claimsOf(unchecked.body.id))
      expect(c).toMatchObject({ status: "failed", verdict: "unverifiable", error: { type: "provider_auth" } });
    await call("GET", `/v1/research/${"0".repeat(32)}`, "/v1/research/{id}");
    await call("GET", "/v1/research/bad!id", "/v1/research/{id}");
    expect((await call("DELETE", `/v1/research/${id}`, "/v1/research/{id}")).status).toBe(409);
    const events = await call("GET", `/v1/research/${id}/events`, "/v1/research/{id}/events");
    expect(events.body.at(-1).type).toBe("research.completed");
    expect(events.body.map((e: Json) => e.type)).toEqual(expect.arrayContaining(["claim.started", "claim.retrying", "claim.completed"]));
    const uncheckedEvents = await call("GET", `/v1/research/${unchecked.body.id}/events`, "/v1/research/{id}/events");
    expect(uncheckedEvents.body.filter((e: Json) => e.type === "claim.completed")).toHaveLength(claimsOf(unchecked.body.id).length);
    await call("GET", `/v1/research/${"0".repeat(32)}/events`, "/v1/research/{id}/events");

    const list = await call("GET", "/v1/research?limit=2", "/v1/research");
    expect(list.body.researches).toHaveLength(2);
    await call("GET", `/v1/research?${new URLSearchParams({ cursor: list.body.nextCursor }).toString()}`, "/v1/research");
    await call("GET", "/v1/research?status=done", "/v1/research");

    // The collector has assembled the completed research's trace, through to its last stage.
    await waitFor(
      async () => {
        const res = await fetch(`${url}/v1/traces/${traceId}`);
        return res.ok && ((await res.json()) as Json).summary.stages.includes("synthesis") ? true : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 100, what: "the research's trace in the collector" },
    );
    await call("GET", "/v1/traces", "/v1/traces");
    await call("GET", "/v1/traces?kind=all&sort=cost&limit=1", "/v1/traces");
    await call("GET", "/v1/traces?kind=nope", "/v1/traces");
    const detail = await call("GET", `/v1/traces/${traceId}`, "/v1/traces/{traceId}");
    expect(detail.body.tree.length).toBeGreaterThan(0);
    await call("GET", `/v1/traces/${"f".repeat(32)}`, "/v1/traces/{traceId}");
    await call("GET", "/v1/traces/xyz", "/v1/traces/{traceId}");
    await call("GET", `/v1/traces/${traceId}/replay`, "/v1/traces/{traceId}/replay");
    const whatIf = await call(
      "GET",
      `/v1/traces/${traceId}/what-if?swap=factcheck:deepseek-v3.2&swap=synthesis:gpt-4.1`,
      "/v1/traces/{traceId}/what-if",
    );
    expect(Object.keys(whatIf.body.byStage).length).toBeGreaterThan(0);
    await call("GET", `/v1/traces/${traceId}/what-if?swap=factcheck:no-such-model`, "/v1/traces/{traceId}/what-if");
    await call("GET", `/v1/traces/${traceId}/what-if`, "/v1/traces/{traceId}/what-if");
    await call("GET", `/v1/traces/${"f".repeat(32)}/what-if?swap=factcheck:gpt-4.1`, "/v1/traces/{traceId}/what-if");
    await waitFor(async () => ((await (await fetch(`${url}/v1/anomalies`)).json()) as Json).anomalies.length > 0 || undefined, {
      timeoutMs: 30_000,
      intervalMs: 100,
      what: "an anomaly (the retried call)",
    });
    await call("GET", "/v1/anomalies", "/v1/anomalies");
    await call("GET", "/v1/anomalies?type=oops", "/v1/anomalies");
    const stats = await call("GET", "/v1/stats/costs", "/v1/stats/costs");
    expect(stats.body.calls).toBeGreaterThan(0);
    await call("GET", "/v1/stats/costs?since=2026-13-01", "/v1/stats/costs");
    const windowWhatIf = await call("GET", "/v1/stats/what-if?swap=factcheck:deepseek-v3.2", "/v1/stats/what-if");
    expect(windowWhatIf.body.traces).toBeGreaterThan(0);
    await call("GET", "/v1/stats/what-if?swap=factcheck:no-such-model", "/v1/stats/what-if");
    await call("GET", "/v1/stats/what-if?swap=factcheck", "/v1/stats/what-if");
    // A reprice with the collector's own table (no keys here: open, like every route), its progress and its errors.
    const reprice = await call("POST", "/v1/admin/reprice", "/v1/admin/reprice", json({ since: 0 }));
    expect(reprice.status).toBe(202);
    expect((await call("POST", "/v1/admin/reprice", "/v1/admin/reprice", json({ since: 0, priceTable: { models: [] } }))).status).toBe(400);
    const repriced = await waitFor(
      async () => {
        const r = await call("GET", `/v1/admin/reprice/${reprice.body.id}`, "/v1/admin/reprice/{id}");
        return r.body.state === "completed" ? r.body : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 100, what: "the reprice to complete" },
    );
    expect(repriced.tracesDone).toBeGreaterThan(0);
    await call("GET", "/v1/admin/reprice/nope", "/v1/admin/reprice/{id}");
    await call("GET", `/v1/admin/reprice/reprice-${"0".repeat(8)}-0000-0000-0000-${"0".repeat(12)}`, "/v1/admin/reprice/{id}");
    await call("GET", "/healthz", "/healthz");
    await call("GET", "/readyz", "/readyz");
    await call("GET", "/openapi.json", "/openapi.json");
    const page = await call("GET", "/docs", "/docs");
    expect(page.body).toContain("/v1/research/{id}/events");

    // Every described route was exercised above and its answers validated.
    expect(describedRoutes(doc).filter((r) => !validated.has(r.replace(/:([A-Za-z]+)/g, "{$1}")))).toEqual([]);
  }, 180_000);
});
