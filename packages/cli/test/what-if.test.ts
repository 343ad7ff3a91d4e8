import { execFile } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { isolatedRun, ONE_OF_EACH, startStack, type Stack } from "@tracelane/launcher";
import { waitFor } from "@tracelane/testkit";

// `tracelane what-if` as a shell runs it, against a real api over HTTP in front of the whole pipeline.
const BIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../bin/tracelane.mjs");

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function tracelane(args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [BIN, ...args],
      { env: { ...process.env, TRACELANE_URL: apiUrl }, timeout: 60_000 },
      (err, stdout, stderr) => {
        resolve({ code: err ? (typeof err.code === "number" ? err.code : -1) : 0, stdout, stderr });
      },
    );
  });
}

const getJson = async (p: string) => {
  const res = await fetch(`${apiUrl}${p}`);
  expect(res.status, p).toBe(200);
  return (await res.json()) as Record<string, any>;
};

let stack: Stack;
let apiUrl: string;
const traceIds: string[] = [];

beforeAll(async () => {
  const { env } = isolatedRun("cli-what-if");
  stack = await startStack({
    redisUrl: inject("redisUrl"),
    replicas: ONE_OF_EACH,
    env: { ...env, LOG_LEVEL: "warn", LLM_SIM_LATENCY_MS: "30", BREAKER_THRESHOLD: "1000", COLLECTOR_BLOCK_MS: "100" },
  });
  apiUrl = stack.apiUrl!;
  for (const query of ["How do heat pumps work in cold climates?", "Why is the sky blue?"]) {
    const res = await fetch(`${apiUrl}/v1/research`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ query }),
    });
    const { id, traceId } = (await res.json()) as { id: string; traceId: string };
    traceIds.push(traceId);
    await waitFor(async () => (await getJson(`/v1/research/${id}`)).status === "completed" || undefined, {
      timeoutMs: 60_000,
      what: `research ${id} to complete`,
    });
    // The trace is whole once its last stage's queue span is in (the last span to end).
    await waitFor(
      async () => {
        const res = await fetch(`${apiUrl}/v1/traces/${traceId}/replay`);
        return ((res.ok ? await res.text() : "").includes("process research-synthesis") as boolean) || undefined;
      },
      { timeoutMs: 30_000, what: `trace ${traceId} assembled` },
    );
  }
}, 180_000);

afterAll(async () => {
  await stack?.stop();
});

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
const usd = (v: number) => `${v < 0 ? "-" : ""}\\$${Math.abs(v).toFixed(6)}`;

describe("tracelane what-if", () => {
  it("--swap --since prints per stage model → what-if model, actual, what-if, saving and share, the total and the assumptions", async () => {
    const run = await tracelane(["what-if", "--swap", "factcheck:deepseek-v3.2", "--swap", "synthesis:gpt-4.1", "--since", "1h"]);
    expect(run.stderr).toBe("");
    expect(run.code).toBe(0);
    const json = await tracelane([
      "what-if",
      "--swap",
      "factcheck:deepseek-v3.2",
      "--swap",
      "synthesis:gpt-4.1",
      "--since",
      "1h",
      "--json",
    ]);
    const body = JSON.parse(json.stdout) as {
      traces: number;
      since: string;
      until: string;
      actualCostUsd: number;
      whatIfCostUsd: number;
      savingUsd: number;
      savingShare: number;
      byStage: Record<string, { model: string; whatIfModel: string; calls: number; actualCostUsd: number; whatIfCostUsd: number }>;
      assumptions: string[];
    };
    expect(body.traces).toBe(2);
    // --json is the api's answer for the same window.
    expect(body).toEqual(
      await getJson(
        `/v1/stats/what-if?swap=factcheck:deepseek-v3.2&swap=synthesis:gpt-4.1&since=${encodeURIComponent(body.since)}&until=${encodeURIComponent(body.until)}`,
      ),
    );

    expect(run.stdout).toMatch(/^what-if factcheck:deepseek-v3\.2, synthesis:gpt-4\.1 over 2 traces from \S+ \S+ to \S+ \S+$/m);
    expect(run.stdout).toMatch(/^stage +model → what-if model +calls +actual +what-if +saving +share +left out$/m);
    for (const [stage, s] of Object.entries(body.byStage)) {
      const models = s.model === s.whatIfModel ? `${s.model} \\(kept\\)` : `${escape(s.model)} → ${escape(s.whatIfModel)}`;
      const saving = s.actualCostUsd - s.whatIfCostUsd;
      const share = `${((saving / s.actualCostUsd) * 100).toFixed(1)}%`;
      expect(run.stdout).toMatch(
        new RegExp(
          `^${stage} +${models} +${s.calls} +${usd(s.actualCostUsd)} +${usd(s.whatIfCostUsd)} +${usd(saving)} +${escape(share)}$`,
          "m",
        ),
      );
    }
    expect(body.byStage.factcheck!.whatIfModel).toBe("deepseek-v3.2");
    expect(run.stdout).toMatch(
      new RegExp(
        `^total +${Object.values(body.byStage).reduce((n, s) => n + s.calls, 0)} +${usd(body.actualCostUsd)} +${usd(body.whatIfCostUsd)} +${usd(body.savingUsd)} +${escape(`${(body.savingShare * 100).toFixed(1)}%`)}$`,
        "m",
      ),
    );
    expect(run.stdout).toContain(`assumes:\n${body.assumptions.map((a) => `  - ${a}`).join("\n")}`);
  });

  it("--trace prices one trace, as GET /v1/traces/:traceId/what-if answers", async () => {
    const traceId = traceIds[0]!;
    const run = await tracelane(["what-if", "--swap", "factcheck:gpt-4.1-mini", "--trace", traceId]);
    expect(run.code).toBe(0);
    const api = await getJson(`/v1/traces/${traceId}/what-if?swap=factcheck:gpt-4.1-mini`);
    expect(run.stdout).toMatch(new RegExp(`^what-if factcheck:gpt-4\\.1-mini over trace ${traceId}$`, "m"));
    expect(run.stdout).toMatch(new RegExp(`^total +\\d+ +${usd(api.actualCostUsd)} +${usd(api.whatIfCostUsd)} `, "m"));
    const json = await tracelane(["what-if", "--swap", "factcheck:gpt-4.1-mini", "--trace", traceId, "--json"]);
    expect(JSON.parse(json.stdout)).toEqual(api);
  });

  it("exits 2 with the reason for a bad swap, an unknown model or a stage the pipeline does not have", async () => {
    const none = await tracelane(["what-if", "--since", "1h"]);
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/^tracelane: --swap: give at least one, e.g. --swap factcheck:deepseek-v3\.2\n\nUsage: tracelane what-if/);
    const malformed = await tracelane(["what-if", "--swap", "factcheck"]);
    expect(malformed.code).toBe(2);
    expect(malformed.stderr).toMatch(/^tracelane: --swap: must be <stage>:<model> such as factcheck:deepseek-v3\.2 \(got "factcheck"\)/);
    const unknown = await tracelane(["what-if", "--swap", "factcheck:no-such-model"]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(
      /^tracelane: the api answered 400 unknown_model: stage factcheck: "no-such-model" is not in the price table, .*use a model it lists \(gpt-4\.1, /,
    );
    const stage = await tracelane(["what-if", "--swap", "review:gpt-4.1"]);
    expect(stage.code).toBe(2);
    expect(stage.stderr).toMatch(/^tracelane: the api answered 400 invalid_query: "review" is not a stage of the pipeline/);
    const both = await tracelane(["what-if", "--swap", "factcheck:gpt-4.1", "--trace", traceIds[0]!, "--since", "1h"]);
    expect(both.code).toBe(2);
    expect(both.stderr).toMatch(/^tracelane: --trace: prices one trace, so it takes no --since, --until or --kind/);
  });
});
