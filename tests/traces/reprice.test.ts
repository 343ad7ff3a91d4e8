import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { ONE_OF_EACH } from "@tracelane/launcher";
import { PriceTable } from "@tracelane/pricing";
import { REPRICE_QUEUE, repriceQueuePrefix, type RepriceProgress } from "@tracelane/queue-contract";
import type { ResearchView } from "@tracelane/research-store";
import { waitFor } from "@tracelane/testkit";
import { flattenTree, traceKeys, type SpanTreeNode } from "@tracelane/trace-store";
import { apiClient } from "../support/api-client.js";
import { waitForCollectedTrace, type TraceResponse } from "../support/collected-traces.js";
import { usePipeline } from "../support/pipeline-stack.js";
import { spansOfResearch } from "../support/spans.js";

/**
 * Issue 15 §2: POST /v1/admin/reprice re-prices stored traces, their indexes and their researches' costs.
 * The collector prices with the built-in table minus deepseek-v3.2 (the synthesis model), so synthesis calls are
 * stored unpriced; the workers have the full table, so the research records have them priced as charged.
 */
const dir = mkdtempSync(path.join(tmpdir(), "reprice-"));
interface Entry {
  model: string;
  inputPer1M: number;
  cachedInputPer1M?: number;
  outputPer1M: number;
}
const builtIn = JSON.parse(readFileSync(new URL("../../packages/pricing/src/prices.json", import.meta.url), "utf8")) as {
  models: Entry[];
};
const collectorTable = path.join(dir, "collector-prices.json");
writeFileSync(collectorTable, JSON.stringify({ models: builtIn.models.filter((m) => m.model !== "deepseek-v3.2") }));
// The new table: gpt-4.1 at twice its price, deepseek-v3.2 back in.
const newTable = {
  models: builtIn.models.map((m) =>
    m.model === "gpt-4.1"
      ? { ...m, inputPer1M: m.inputPer1M * 2, cachedInputPer1M: m.cachedInputPer1M! * 2, outputPer1M: m.outputPer1M * 2 }
      : m,
  ),
};

// USD per 1M tokens (input, cached input, output) of the new table, written out by hand.
const NEW_PRICES: Record<string, [number, number, number]> = {
  "gpt-4.1": [4.0, 1.0, 16.0],
  "gemini-2.5-flash": [0.3, 0.03, 2.5],
  "deepseek-v3.2": [0.28, 0.028, 0.42],
};
const nanoAt = (c: { model: string; inputTokens: number; outputTokens: number; cachedInputTokens: number }) => {
  const [pin, pcached, pout] = NEW_PRICES[c.model]!;
  return Math.round(
    (c.inputTokens - c.cachedInputTokens) * pin * 1_000 + c.cachedInputTokens * pcached * 1_000 + c.outputTokens * pout * 1_000,
  );
};
const nano = (usd: number | null | undefined) => Math.round((usd ?? 0) * 1e9);

const ADMIN = "admin-key-5d4c3b2a19080706";
const MEMBER = "member-key-0f1e2d3c4b5a6978";

const run = usePipeline({
  replicas: ONE_OF_EACH,
  // One trace per step, so a reprice of a few traces reports several steps.
  serviceEnv: { "trace-collector": { TRACELANE_PRICE_TABLE: collectorTable, REPRICE_BATCH_TRACES: "1" } },
  env: { COLLECTOR_BLOCK_MS: "100", API_KEYS: `${ADMIN} ops admin,${MEMBER} alice` },
});

const as = (key: string | undefined): Record<string, string> => (key ? { authorization: `Bearer ${key}` } : {});

/** GET /v1/admin/reprice/:id: the job's figures (as the collector reports them) with its id and state. */
interface RepriceStatus extends Omit<RepriceProgress, "priceVersion" | "cursor"> {
  id: string;
  state: string;
  priceVersion: string | null;
  error?: string;
}

/** `key` null: no Authorization header. */
async function post(body: unknown, key: string | null = ADMIN) {
  const res = await fetch(`${run.stack.apiUrl}/v1/admin/reprice`, {
    method: "POST",
    headers: { "content-type": "application/json", ...as(key ?? undefined) },
    body: JSON.stringify(body),
  });
  return { status: res.status, location: res.headers.get("location"), body: (await res.json()) as Record<string, unknown> };
}

async function reprice(body: unknown): Promise<RepriceStatus> {
  const created = await post(body);
  expect(created.status, JSON.stringify(created.body)).toBe(202);
  expect(created.location).toBe(`/v1/admin/reprice/${String(created.body.id)}`);
  return waitFor(
    async () => {
      const res = await fetch(`${run.stack.apiUrl}${created.location!}`, { headers: as(ADMIN) });
      expect(res.status).toBe(200);
      const status = (await res.json()) as RepriceStatus;
      if (status.state === "failed") throw new Error(`reprice failed: ${status.error}`);
      return status.state === "completed" ? status : undefined;
    },
    { timeoutMs: 30_000, intervalMs: 50, what: "the reprice to complete" },
  );
}

async function trace(traceId: string): Promise<TraceResponse> {
  const res = await fetch(`${run.stack.apiUrl}/v1/traces/${traceId}`, { headers: as(ADMIN) });
  expect(res.status).toBe(200);
  return (await res.json()) as TraceResponse;
}

const research = (id: string): Promise<ResearchView> => apiClient(run.stack.apiUrl!, { apiKey: ADMIN }).get(id);

/** What Redis holds for a trace: summary hash (version and JSON) and its cost index score. */
async function stored(traceId: string) {
  const k = traceKeys(run.stack.prefixes.traces).of(traceId);
  const [summary, cost, spans] = await Promise.all([
    run.redis.hgetall(k.summary),
    run.redis.zscore(k.idxCost, traceId),
    run.redis.hgetall(k.spans),
  ]);
  return { v: summary.v, json: summary.json, cost, spans };
}

const callsOf = (tree: SpanTreeNode[]) => flattenTree(tree).filter((s) => s.call);

async function costStats(since: number, until: number) {
  const res = await fetch(`${run.stack.apiUrl}/v1/stats/costs?kind=all&since=${since}&until=${until}`, { headers: as(ADMIN) });
  expect(res.status).toBe(200);
  return (await res.json()) as {
    costUsd: number;
    unpricedCalls: number;
    byModel: Record<string, { costUsd: number; unpricedCalls: number }>;
    byStage: Record<string, { costUsd: number }>;
  };
}

describe("re-pricing stored traces (POST /v1/admin/reprice)", () => {
  it("refuses callers without an admin key and bodies it cannot run, naming the field", async () => {
    expect((await post({ since: 0 }, null)).status).toBe(401);
    const member = await post({ since: 0 }, MEMBER);
    expect(member.status).toBe(403);
    expect(JSON.stringify(member.body)).toContain("admin API key");
    const memberGet = await fetch(`${run.stack.apiUrl}/v1/admin/reprice/reprice-00000000-0000-0000-0000-000000000000`, {
      headers: as(MEMBER),
    });
    expect(memberGet.status).toBe(403);
    expect(
      (await fetch(`${run.stack.apiUrl}/v1/admin/reprice/reprice-00000000-0000-0000-0000-000000000000`, { headers: as(ADMIN) })).status,
    ).toBe(404);
    expect((await fetch(`${run.stack.apiUrl}/v1/admin/reprice/nope`, { headers: as(ADMIN) })).status).toBe(400);

    const bad = async (body: unknown, field: string, words: string) => {
      const r = await post(body);
      expect(r.status, JSON.stringify(r.body)).toBe(400);
      const error = r.body.error as { code: string; message: string; details: { path: string; message: string }[] };
      expect(error.code).toBe("invalid_request");
      expect(error.details.map((d) => d.path)).toContain(field);
      expect(error.message).toContain(words);
    };
    await bad({}, "since", "since");
    await bad({ since: "yesterday" }, "since", "ISO 8601");
    await bad({ since: "2026-12-02T10:00:00Z", until: "2026-12-02T09:00:00Z" }, "until", "must not be before since");
    await bad({ since: 0, window: 5 }, "window", 'unknown field "window"; allowed fields here: since, until, priceTable');
    const broken = { models: [{ ...newTable.models[0]!, inputPer1M: -1 }] };
    await bad({ since: 0, priceTable: broken }, "priceTable.models.0.inputPer1M", "priceTable.models.0.inputPer1M");
    await bad({ since: 0, priceTable: { models: [] } }, "priceTable.models", "priceTable.models");
  });

  it("moves every trace total, breakdown, index score, research total and cost stat exactly; twice changes nothing", async () => {
    const base = run.stack.apiUrl!;
    const api = apiClient(base, { apiKey: ADMIN });
    const windowStart = Date.now() - 1_000;
    const first = await api.submit({ query: "What does a heat pump cost to run in winter?" });
    const firstView = await api.waitForFinal(first.body.id, 60_000);
    expect(firstView.status).toBe("completed");
    await waitForCollectedTrace(base, first.body.traceId, spansOfResearch(firstView), 30_000, ADMIN);
    const between = Date.now();
    await new Promise((r) => setTimeout(r, 20));
    const second = await api.submit({ query: "Why do lithium batteries age faster when hot?" });
    const secondView = await api.waitForFinal(second.body.id, 60_000);
    expect(secondView.status).toBe("completed");
    await waitForCollectedTrace(base, second.body.traceId, spansOfResearch(secondView), 30_000, ADMIN);

    // Before: the collector left every synthesis (deepseek-v3.2) call unpriced.
    const before = await trace(first.body.traceId);
    const calls = callsOf(before.tree);
    const deepseek = calls.filter((c) => c.call!.model === "deepseek-v3.2");
    const gpt = calls.filter((c) => c.call!.model === "gpt-4.1");
    expect(deepseek.length).toBeGreaterThan(0);
    expect(gpt.length).toBeGreaterThan(0);
    expect(deepseek.every((c) => c.call!.costUsd === null)).toBe(true);
    expect(before.summary.unpricedCalls).toBe(deepseek.length);
    const secondBefore = await stored(second.body.traceId);
    const secondResearchBefore = await research(second.body.id);

    // Re-price the first research's window with the new table.
    const done = await reprice({ since: new Date(windowStart).toISOString(), until: between, priceTable: newTable });
    expect(done.tracesDone + done.tracesSkipped).toBe(done.tracesTotal);
    expect(done.tracesSkipped).toBe(0);
    expect(done.tracesDone).toBeGreaterThanOrEqual(1);
    expect(done.tracesChanged).toBe(1); // the research's trace; the api's other request traces have no calls
    expect(done.callsRepriced).toBe(gpt.length + deepseek.length);
    expect(done.nowPriced, JSON.stringify(done)).toBe(deepseek.length);
    expect(done.nowUnpriced).toBe(0);
    expect(done.researchesRepriced).toBe(1);
    expect(done.priceVersion).toBe(PriceTable.parse(newTable).version);

    // By hand: every call at the new table's rates, and each total the sum of its calls.
    const after = await trace(first.body.traceId);
    const afterCalls = callsOf(after.tree);
    const expected = new Map(afterCalls.map((c) => [c.spanId, nanoAt(c.call!)]));
    for (const c of afterCalls) expect(nano(c.call!.costUsd), `${c.name} ${c.spanId}`).toBe(expected.get(c.spanId));
    const sum = (pick: (c: (typeof afterCalls)[number]) => boolean) =>
      afterCalls.filter(pick).reduce((n, c) => n + expected.get(c.spanId)!, 0);
    const total = sum(() => true);
    expect(nano(after.summary.costUsd)).toBe(total);
    expect(after.summary.unpricedCalls).toBe(0);
    expect(after.summary.priceVersions).toEqual([PriceTable.parse(newTable).version]);
    for (const model of Object.keys(NEW_PRICES)) {
      expect(nano(after.summary.byModel[model]!.costUsd), model).toBe(sum((c) => c.call!.model === model));
      expect(after.summary.byModel[model]!.unpricedCalls).toBe(0);
    }
    for (const stage of ["analysis", "factcheck", "synthesis"]) {
      expect(nano(after.summary.byStage[stage]!.costUsd), stage).toBe(sum((c) => c.stage === stage));
    }
    expect(nano(done.costAfterUsd) - nano(done.costBeforeUsd)).toBe(total - nano(before.summary.costUsd));
    expect(nano(done.costAfterUsd)).toBe(total);
    // Its cost index score, the list sorted by cost and the stats of the window.
    const firstStored = await stored(first.body.traceId);
    expect(nano(Number(firstStored.cost))).toBe(total);
    const stats = await costStats(windowStart, between);
    expect(nano(stats.costUsd)).toBe(total);
    expect(stats.unpricedCalls).toBe(0);
    expect(nano(stats.byModel["gpt-4.1"]!.costUsd)).toBe(sum((c) => c.call!.model === "gpt-4.1"));
    expect(nano(stats.byModel["deepseek-v3.2"]!.costUsd)).toBe(sum((c) => c.call!.model === "deepseek-v3.2"));
    expect(nano(stats.byStage.synthesis!.costUsd)).toBe(sum((c) => c.stage === "synthesis"));

    // The research: each stage's row, each claim's row and the totals, from the re-priced calls.
    const view = await research(first.body.id);
    expect(nano(view.totals.costUsd)).toBe(total);
    expect(view.totals.unpricedModels).toEqual([]);
    for (const stage of ["analysis", "factcheck", "synthesis"] as const) {
      expect(nano(view.stages[stage].costUsd), stage).toBe(sum((c) => c.stage === stage));
    }
    const claims = view.stages.factcheck.claims ?? [];
    expect(claims.length).toBeGreaterThan(0);
    const byClaim = new Map<number, number>();
    const nodes = new Map(flattenTree(after.tree).map((s) => [s.spanId, s]));
    for (const c of afterCalls) {
      let cur: (typeof afterCalls)[number] | undefined = c;
      while (cur && typeof cur.attributes["tracelane.claim.index"] !== "number")
        cur = cur.parentSpanId ? nodes.get(cur.parentSpanId) : undefined;
      if (cur) {
        const index = cur.attributes["tracelane.claim.index"] as number;
        byClaim.set(index, (byClaim.get(index) ?? 0) + expected.get(c.spanId)!);
      }
    }
    for (const claim of claims) expect(nano(claim.costUsd), `claim ${claim.index}`).toBe(byClaim.get(claim.index));
    // The research of the other window, and its trace, untouched.
    expect(await stored(second.body.traceId)).toEqual(secondBefore);
    expect(await research(second.body.id)).toEqual(secondResearchBefore);

    // Progress: one report before the first step and one after each (one trace per step here).
    const eventsKey = `${repriceQueuePrefix(run.stack.prefixes.queue)}:${REPRICE_QUEUE}:events`;
    const events = await run.redis.xrange(eventsKey, "-", "+");
    const progress = events.filter(([, f]) => f[1] === "progress" && f.includes(done.id));
    expect(progress.length).toBe(done.tracesTotal + 1);

    // Twice in a row: nothing moves (same summary bytes and version, same spans, same score, same research).
    const again = await reprice({ since: windowStart, until: between, priceTable: newTable });
    expect(again).toMatchObject({ tracesChanged: 0, callsRepriced: 0, nowPriced: 0, nowUnpriced: 0, researchesRepriced: 0 });
    expect(again.tracesDone).toBe(done.tracesDone);
    expect(again.priceVersion).toBe(done.priceVersion);
    expect(again.costBeforeUsd).toBe(again.costAfterUsd);
    expect(await stored(first.body.traceId)).toEqual(firstStored);
    expect(await research(first.body.id)).toEqual(view);

    // Without a table: the collector's own, where deepseek-v3.2 has no price: those calls are unpriced again, in
    // the first research's trace and in the second research's costs (as the collector prices them).
    const back = await reprice({ since: windowStart });
    expect(back.nowUnpriced, JSON.stringify(back)).toBe(deepseek.length);
    expect(back.priceVersion).toBe(PriceTable.parse(JSON.parse(readFileSync(collectorTable, "utf8"))).version);
    const restored = await trace(first.body.traceId);
    expect(nano(restored.summary.costUsd)).toBe(nano(before.summary.costUsd));
    expect(restored.summary.byStage).toEqual(before.summary.byStage);
    const secondView2 = await research(second.body.id);
    expect(secondView2.stages.synthesis.costUsd).toBeNull();
    expect(secondView2.totals.unpricedModels).toEqual(["deepseek-v3.2"]);
  });
});
