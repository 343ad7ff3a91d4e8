import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { ONE_OF_EACH } from "@tracelane/launcher";
import { traceKeys, type TraceSummary } from "@tracelane/trace-store";
import { apiClient } from "../support/api-client.js";
import { waitForCollectedTrace } from "../support/collected-traces.js";
import { usePipeline } from "../support/pipeline-stack.js";
import { spansOfResearch } from "../support/spans.js";
import { priceTableWithTinyModel } from "../support/price-tables.js";

// GET /v1/stats/what-if over real researches: the api (with API keys, a price table that adds a model too small
// for some calls, and at most 3 traces per window read) in front of the whole pipeline and the collector.
const tableFile = priceTableWithTinyModel("what-if-window");
const keys = { alice: randomBytes(16).toString("hex"), bob: randomBytes(16).toString("hex"), root: randomBytes(16).toString("hex") };
type Who = keyof typeof keys;
const MAX_TRACES = 3;

// List prices, USD per 1M tokens (input, cached input, output), written out by hand.
const PRICES: Record<string, [number, number, number]> = {
  "gpt-4.1": [2.0, 0.5, 8.0],
  "gemini-2.5-flash": [0.3, 0.03, 2.5],
  "deepseek-v3.2": [0.28, 0.028, 0.42],
};
interface Call {
  traceId: string;
  spanId: string;
  stage: string;
  model: string;
  inputTokens: number;
  outputTokens: number;
  cachedInputTokens: number;
}
const nanoAt = (model: string, c: Call) => {
  const [pin, pcached, pout] = PRICES[model]!;
  return Math.round(
    (c.inputTokens - c.cachedInputTokens) * pin * 1_000 + c.cachedInputTokens * pcached * 1_000 + c.outputTokens * pout * 1_000,
  );
};

const run = usePipeline({
  replicas: ONE_OF_EACH,
  serviceEnv: {
    api: {
      TRACELANE_PRICE_TABLE: tableFile,
      TRACELANE_WHAT_IF_MAX_TRACES: String(MAX_TRACES),
      API_KEYS: `${keys.alice} alice member, ${keys.bob} bob member, ${keys.root} root admin`,
    },
  },
  env: { COLLECTOR_BLOCK_MS: "100" },
});

interface StageAnswer {
  model: string;
  whatIfModel: string;
  calls: number;
  actualCostUsd: number;
  whatIfCostUsd: number;
  flaggedCalls: number;
}
interface Answer {
  traces: number;
  truncated: boolean;
  truncatedNote?: string;
  since: string;
  until: string;
  actualCostUsd: number;
  whatIfCostUsd: number;
  savingUsd: number;
  savingShare: number;
  byStage: Record<string, StageAnswer>;
  flags: Array<{ traceId: string; spanId: string; stage: string; reason: string }>;
  flaggedCalls: number;
  assumptions: string[];
  error?: { code: string; message: string };
}

const nano = (usd: number) => Math.round(usd * 1e9);

async function get(who: Who, pathAndQuery: string): Promise<{ status: number; body: Answer }> {
  const res = await fetch(`${run.stack.apiUrl}${pathAndQuery}`, { headers: { authorization: `Bearer ${keys[who]}` } });
  return { status: res.status, body: (await res.json()) as Answer };
}

/** A research by `who`, completed, with its trace whole at the collector; its calls from the trace's spans. */
async function research(who: Who, query: string): Promise<{ traceId: string; calls: Call[] }> {
  const api = apiClient(run.stack.apiUrl!, { apiKey: keys[who] });
  const { status, body } = await api.submit({ query });
  expect(status).toBe(202);
  const view = await api.waitForFinal(body.id, 60_000);
  expect(view.status).toBe("completed");
  const { spans } = await waitForCollectedTrace(run.stack.apiUrl!, body.traceId, spansOfResearch(view), 30_000, keys[who]);
  const calls = spans
    .filter((s) => s.call)
    .map((s) => ({
      traceId: body.traceId,
      spanId: s.spanId,
      stage: s.stage!,
      model: s.call!.model,
      inputTokens: s.call!.inputTokens,
      outputTokens: s.call!.outputTokens,
      cachedInputTokens: s.call!.cachedInputTokens,
    }));
  return { traceId: body.traceId, calls };
}

/** The answer a hand computation from the price table gives for these calls and swaps. */
function byHand(calls: Call[], swaps: Record<string, string>) {
  const stages: Record<string, { actual: number; whatIf: number; calls: number; model: string; whatIfModel: string }> = {};
  for (const c of calls) {
    const target = swaps[c.stage] ?? c.model;
    const row = (stages[c.stage] ??= { actual: 0, whatIf: 0, calls: 0, model: c.model, whatIfModel: target });
    row.actual += nanoAt(c.model, c);
    row.whatIf += nanoAt(target, c);
    row.calls++;
  }
  const actual = Object.values(stages).reduce((n, r) => n + r.actual, 0);
  const whatIf = Object.values(stages).reduce((n, r) => n + r.whatIf, 0);
  return { stages, actual, whatIf };
}

function expectByHand(answer: Answer, calls: Call[], swaps: Record<string, string>) {
  const hand = byHand(calls, swaps);
  expect(Object.keys(answer.byStage).sort()).toEqual(Object.keys(hand.stages).sort());
  for (const [stage, row] of Object.entries(hand.stages)) {
    const got = answer.byStage[stage]!;
    expect(got, stage).toMatchObject({ model: row.model, whatIfModel: row.whatIfModel, calls: row.calls, flaggedCalls: 0 });
    expect(nano(got.actualCostUsd), `${stage} actual`).toBe(row.actual);
    expect(nano(got.whatIfCostUsd), `${stage} what-if`).toBe(row.whatIf);
  }
  expect(nano(answer.actualCostUsd)).toBe(hand.actual);
  expect(nano(answer.whatIfCostUsd)).toBe(hand.whatIf);
  expect(nano(answer.savingUsd)).toBe(hand.actual - hand.whatIf);
  expect(answer.savingShare).toBeCloseTo((hand.actual - hand.whatIf) / hand.actual, 9);
}

describe("GET /v1/stats/what-if over real researches", () => {
  it("sums every visible trace of the window, to the nano-dollar, scoped to the key; flags what does not fit; says when it is truncated", async () => {
    const since = new Date(Date.now() - 1_000).toISOString();
    const alice1 = await research("alice", "What does a heat pump cost to run in winter?");
    const alice2 = await research("alice", "Why do lithium batteries lose capacity in the cold?");
    const bob1 = await research("bob", "How do tidal power plants work?");
    const until = new Date(Date.now() + 1_000).toISOString();
    const window = `since=${encodeURIComponent(since)}&until=${encodeURIComponent(until)}`;
    const all = [alice1, alice2, bob1];
    // Cached input tokens are priced at the cached rate: the fact-check's claim turns share a prompt prefix.
    const cachedCheck = all.find((r) => r.calls.some((c) => c.stage === "factcheck" && c.cachedInputTokens > 0));
    expect(cachedCheck, "a fact-check call with cached input tokens").toBeDefined();

    for (const [query, swaps] of [
      ["swap=factcheck:deepseek-v3.2", { factcheck: "deepseek-v3.2" }],
      ["swap=factcheck:deepseek-v3.2&swap=synthesis:gpt-4.1", { factcheck: "deepseek-v3.2", synthesis: "gpt-4.1" }],
    ] as const) {
      // The admin's window: every trace, equal to the hand computation and to the sum of the per-trace answers.
      const { status, body } = await get("root", `/v1/stats/what-if?${query}&${window}`);
      expect(status, JSON.stringify(body)).toBe(200);
      expect(body).toMatchObject({ traces: 3, truncated: false, flags: [], flaggedCalls: 0, since, until });
      expect(body.assumptions.length).toBeGreaterThan(0);
      expectByHand(
        body,
        all.flatMap((r) => r.calls),
        swaps,
      );
      const perTrace = await Promise.all(all.map(async (r) => (await get("root", `/v1/traces/${r.traceId}/what-if?${query}`)).body));
      for (const [i, r] of all.entries()) expectByHand(perTrace[i]!, r.calls, swaps);
      expect(nano(body.actualCostUsd)).toBe(perTrace.reduce((n, a) => n + nano(a.actualCostUsd), 0));
      expect(nano(body.whatIfCostUsd)).toBe(perTrace.reduce((n, a) => n + nano(a.whatIfCostUsd), 0));
      for (const stage of Object.keys(body.byStage)) {
        expect(nano(body.byStage[stage]!.whatIfCostUsd)).toBe(perTrace.reduce((n, a) => n + nano(a.byStage[stage]!.whatIfCostUsd), 0));
      }

      // A member key: only its own researches' traces.
      const mine = await get("alice", `/v1/stats/what-if?${query}&${window}`);
      expect(mine.body.traces).toBe(2);
      expectByHand(mine.body, [...alice1.calls, ...alice2.calls], swaps);
      const bobs = await get("bob", `/v1/stats/what-if?${query}&${window}`);
      expect(bobs.body.traces).toBe(1);
      expectByHand(bobs.body, bob1.calls, swaps);
    }

    // A summary stored before calls carried their cached input tokens is priced the same (they are read from its spans).
    const summaryKey = traceKeys(run.stack.prefixes.traces).of(cachedCheck!.traceId).summary;
    const stored = JSON.parse((await run.redis.hget(summaryKey, "json"))!) as TraceSummary;
    const before = (await get("root", `/v1/stats/what-if?swap=factcheck:deepseek-v3.2&${window}`)).body;
    await run.redis.hset(summaryKey, "json", JSON.stringify({ ...stored, calls: stored.calls.map(({ cachedInputTokens: _, ...c }) => c) }));
    const older = (await get("root", `/v1/stats/what-if?swap=factcheck:deepseek-v3.2&${window}`)).body;
    expect(older.whatIfCostUsd).toBe(before.whatIfCostUsd);
    expect(older.byStage).toEqual(before.byStage);

    // A model whose window is smaller than some calls: each such call flagged by trace and span, left out of both sums.
    const tiny = await get("root", `/v1/stats/what-if?swap=factcheck:tiny-model&${window}`);
    expect(tiny.status).toBe(200);
    const tooBig = all.flatMap((r) => r.calls).filter((c) => c.stage === "factcheck" && c.inputTokens + c.outputTokens > 300);
    expect(tooBig.length).toBeGreaterThan(0);
    expect(tiny.body.flaggedCalls).toBe(tooBig.length);
    expect(tiny.body.byStage.factcheck!.flaggedCalls).toBe(tooBig.length);
    expect(tiny.body.flags.map((f) => `${f.traceId}/${f.spanId}`).sort()).toEqual(tooBig.map((c) => `${c.traceId}/${c.spanId}`).sort());
    for (const f of tiny.body.flags) expect(f).toMatchObject({ stage: "factcheck", reason: "context_window" });

    // A fourth trace: more than the api reads per window. The newest three are priced, and the answer says how to see the rest.
    const bob2 = await research("bob", "What sets the speed of sound in air?");
    const later = `since=${encodeURIComponent(since)}&until=${encodeURIComponent(new Date(Date.now() + 1_000).toISOString())}`;
    const capped = await get("root", `/v1/stats/what-if?swap=factcheck:deepseek-v3.2&${later}`);
    expect(capped.status).toBe(200);
    expect(capped.body).toMatchObject({ traces: MAX_TRACES, truncated: true });
    expect(capped.body.truncatedNote).toMatch(
      /more than 3 traces started in this window: the figures cover the newest 3, .*narrow the window/,
    );
    expectByHand(capped.body, [...alice2.calls, ...bob1.calls, ...bob2.calls], { factcheck: "deepseek-v3.2" });
    // bob sees two of his own: not truncated.
    expect((await get("bob", `/v1/stats/what-if?swap=factcheck:deepseek-v3.2&${later}`)).body).toMatchObject({
      traces: 2,
      truncated: false,
    });
  }, 240_000);

  it("refuses what it cannot price or read with a 400 that says why", async () => {
    for (const [query, code, message] of [
      ["", "invalid_query", /needs at least one swap=<stage>:<model>/],
      ["swap=factcheck", "invalid_query", /is not a swap: expected swap=<stage>:<model>/],
      ["swap=review:gpt-4.1", "invalid_query", /"review" is not a stage of the pipeline/],
      ["swap=factcheck:gpt-4.1&swap=factcheck:deepseek-v3.2", "invalid_query", /swapped twice/],
      ["swap=factcheck:no-such-model", "unknown_model", /"no-such-model" is not in the price table.*use a model it lists \(gpt-4\.1, /],
      ["swap=factcheck:gpt-4.1&since=yesterday", "invalid_query", /since: must be an ISO 8601 time/],
      ["swap=factcheck:gpt-4.1&since=2026-12-02&until=2026-12-01", "invalid_query", /since: must not be after until/],
      ["swap=factcheck:gpt-4.1&kind=mine", "invalid_query", /kind: must be one of/],
      ["swap=factcheck:gpt-4.1&limit=3", "invalid_query", /limit: unknown query parameter/],
    ] as const) {
      const { status, body } = await get("alice", `/v1/stats/what-if?${query}`);
      expect(status, query).toBe(400);
      expect(body.error!.code, query).toBe(code);
      expect(body.error!.message, query).toMatch(message);
    }
    // kind=all (traces of no research) is an admin's view.
    expect((await get("alice", "/v1/stats/what-if?swap=factcheck:gpt-4.1&kind=all")).status).toBe(403);
    expect((await get("root", "/v1/stats/what-if?swap=factcheck:gpt-4.1&kind=all")).status).toBe(200);
  });
});
