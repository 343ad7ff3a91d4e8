import { execFile } from "node:child_process";
import { createServer, request } from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { freePort, isolatedRun, ONE_OF_EACH, startStack, type Stack } from "@tracelane/launcher";
import { waitFor } from "@tracelane/testkit";

const BIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../bin/tracelane.mjs");
const STAGES = [
  ["analysis", "gpt-4.1"],
  ["factcheck", "gemini-2.5-flash"],
  ["synthesis", "deepseek-v3.2"],
] as const;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** The real `tracelane` bin as a child process, as a shell runs it. */
function tracelane(args: string[], env: Record<string, string | undefined> = { TRACELANE_URL: apiUrl }): Promise<Run> {
  return new Promise((resolve) => {
    const childEnv: Record<string, string | undefined> = { ...process.env, TRACELANE_URL: undefined, ...env };
    execFile(process.execPath, [BIN, ...args], { env: childEnv, timeout: 60_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === "number" ? err.code : -1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

const getJson = async (p: string) => {
  const res = await fetch(`${apiUrl}${p}`);
  expect(res.status, p).toBe(200);
  return (await res.json()) as Record<string, any>;
};

/** Six processes boot one after another; on a 2-core machine shared with other test runs that can pass 60 s. */
const STACK_START_MS = 180_000;

let stack: Stack;
let apiUrl: string;
/** The research the first test runs; later tests read it back. */
let done: { id: string; traceId: string };
/** The research that fails with a 401. */
let failedId: string;

beforeAll(async () => {
  const { env } = isolatedRun("cli");
  stack = await startStack({
    redisUrl: inject("redisUrl"),
    replicas: ONE_OF_EACH,
    env: {
      ...env,
      LOG_LEVEL: "warn",
      LLM_SIM_LATENCY_MS: "30",
      // Every model call is slow by this rule, so `traces --anomaly high_latency` has something to find.
      TRACELANE_RULE_CALL_LATENCY_MS: "1",
      BREAKER_THRESHOLD: "1000",
    },
  });
  apiUrl = stack.apiUrl!;
}, STACK_START_MS);

afterAll(async () => {
  await stack?.stop();
});

describe("tracelane research", () => {
  it("--wait prints each stage as it starts and completes, then the report and the links, and exits 0", async () => {
    const run = await tracelane(["research", "How do heat pumps work in cold climates?", "--wait"]);
    expect(run.stderr).toBe("");
    expect(run.code).toBe(0);
    const id = /^research ([0-9a-f]{32}) submitted \(trace ([0-9a-f]{32})\)$/m.exec(run.stdout);
    expect(id, run.stdout).not.toBeNull();
    done = { id: id![1]!, traceId: id![2]! };
    // The first research of this stack: the api has no history to estimate from, and the CLI says so.
    expect(run.stdout).toMatch(
      /^estimate: none yet \(No estimate rather than a guess: the analysis stage has 0 completed researches on gpt-4\.1/m,
    );

    let at = 0;
    for (const [stage, model] of STAGES) {
      const started = run.stdout.indexOf(`${stage.padEnd(10)} started on ${model} (attempt 1)`, at);
      const completed = run.stdout.search(
        new RegExp(`${stage} +completed in \\d+ ms on ${model} · \\d+ in / \\d+ out tokens · \\$0\\.\\d{6}`),
      );
      expect(started, `${stage} started`).toBeGreaterThan(at);
      expect(completed, `${stage} completed`).toBeGreaterThan(started);
      at = completed;
    }
    expect(run.stdout.indexOf("research completed")).toBeGreaterThan(at);

    const view = await getJson(`/v1/research/${done.id}`);
    expect(view.status).toBe("completed");
    expect(run.stdout).toContain(`=== report ===\n\n${(view.result.finalReport as string).trim()}\n`);
    expect(run.stdout).toMatch(
      new RegExp(`^total +${view.totals.inputTokens} +${view.totals.outputTokens} +\\$${view.totals.costUsd.toFixed(6)}`, "m"),
    );
    expect(run.stdout).toContain(`trace:    tracelane trace ${done.traceId}`);
    expect(run.stdout).toContain(`console:  ${apiUrl}${view.links.ui ?? `/ui/traces/${done.traceId}`}`);
  });

  it("--wait --json prints the api's final research, and without --wait the api's 202 answer", async () => {
    const waited = await tracelane(["research", "Why is the sky blue?", "--wait", "--json"]);
    expect(waited.code).toBe(0);
    const final = JSON.parse(waited.stdout) as { id: string; status: string };
    expect(final.status).toBe("completed");
    expect(final).toEqual(await getJson(`/v1/research/${final.id}`));

    const submitted = await tracelane(["research", "What is a Carnot cycle?", "--json"]);
    expect(submitted.code).toBe(0);
    const body = JSON.parse(submitted.stdout) as { id: string; status: string; traceId: string; links: Record<string, string> };
    expect(body).toMatchObject({ status: "queued", links: { self: `/v1/research/${body.id}` } });
    expect(body.traceId).toMatch(/^[0-9a-f]{32}$/);
    await waitFor(async () => (await getJson(`/v1/research/${body.id}`)).status === "completed", {
      timeoutMs: 30_000,
      what: "the submitted research to complete",
    });
  });

  it("--wait --poll follows the research by polling and exits 0", async () => {
    const run = await tracelane(["research", "How do glaciers move?", "--wait", "--poll"]);
    expect(run.code).toBe(0);
    for (const [stage, model] of STAGES) expect(run.stdout).toMatch(new RegExp(`${stage} +completed in \\d+ ms on ${model}`));
    expect(run.stdout).toContain("research completed");
  });

  it("--wait falls back to polling when a proxy in front of the api refuses the event stream", async () => {
    // A reverse proxy that forwards every request to the api but answers 502 for the SSE stream.
    const proxy = createServer((req, res) => {
      if (req.url?.endsWith("/events")) {
        res.writeHead(502, { "content-type": "text/html" }).end("<h1>502 Bad Gateway</h1>");
        return;
      }
      const upstream = request(`${apiUrl}${req.url}`, { method: req.method, headers: req.headers }, (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
      });
      req.pipe(upstream);
    });
    const port = await new Promise<number>((resolve) => proxy.listen(0, "127.0.0.1", () => resolve((proxy.address() as AddressInfo).port)));
    try {
      const run = await tracelane(["research", "How do tides work?", "--wait"], { TRACELANE_URL: `http://127.0.0.1:${port}` });
      expect(run.code).toBe(0);
      expect(run.stderr).toMatch(
        /^\(event stream unavailable \(HTTP 502, text\/html\); polling GET \/v1\/research\/[0-9a-f]{32} instead\)\n$/,
      );
      for (const [stage, model] of STAGES) expect(run.stdout).toMatch(new RegExp(`${stage} +completed in \\d+ ms on ${model}`));
      expect(run.stdout).toContain("research completed");
      expect(run.stdout).toContain("=== report ===");
    } finally {
      await new Promise((resolve) => proxy.close(resolve));
    }
  });

  it("exits 1 and says where and why when the research fails", async () => {
    const run = await tracelane(["research", "Why do batteries age? [[sim:fault=401;model=gpt-4.1;times=1]]", "--wait"]);
    expect(run.code).toBe(1);
    failedId = /^research ([0-9a-f]{32}) submitted/.exec(run.stdout)![1]!;
    expect(run.stdout).toContain("research failed at analysis (provider_auth)");
    expect(run.stdout).toMatch(/^failed at analysis \(provider_auth\): The model provider at .* rejected the API key \(HTTP 401\)/m);
  });
});

describe("tracelane status, trace, traces, costs", () => {
  it("status prints one row per stage and the totals; --json is the api's body", async () => {
    const run = await tracelane(["status", done.id]);
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(new RegExp(`^research ${done.id}: completed in `));
    for (const [stage, model] of STAGES)
      expect(run.stdout).toMatch(new RegExp(`^${stage} +completed +${model} +1 +\\d+ +\\d+ +\\$0\\.\\d{6}`, "m"));
    // The fact-check's claims, one row each with its verdict and what it took.
    const view = (await getJson(`/v1/research/${done.id}`)) as {
      stages: { factcheck: { claims: Array<{ index: number; verdict: string; modelCalls: number; toolCalls: number; claim: string }> } };
    };
    const claims = view.stages.factcheck.claims;
    expect(run.stdout).toContain(`factcheck: ${claims.length} claims, each checked as its own job`);
    for (const c of claims) {
      const row = new RegExp(
        `^${c.index} +${c.verdict} +${c.modelCalls} +${c.toolCalls} +1 +\\$0\\.\\d{6} +\\S+ m?s +${c.claim.slice(0, 30).replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}`,
        "m",
      );
      expect(run.stdout).toMatch(row);
    }

    const json = await tracelane(["status", done.id, "--json"]);
    expect(json.code).toBe(0);
    expect(JSON.parse(json.stdout)).toEqual(await getJson(`/v1/research/${done.id}`));
  });

  it("researches lists them newest first, --status failed only the failed one; --json is the api's body", async () => {
    const run = await tracelane(["researches", "--since", "1h"]);
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^created \(UTC\) +research id +status +stage +duration +cost +anomalies +query$/m);
    const ids = [...run.stdout.matchAll(/^\S+ \S+ +([0-9a-f]{32}) /gm)].map((m) => m[1]);
    const api = await getJson("/v1/research");
    expect(ids).toEqual(api.researches.map((r: { id: string }) => r.id));
    expect(ids).toContain(done.id);
    expect(run.stdout).toMatch(new RegExp(`^\\S+ \\S+ +${done.id} +completed +- +.*How do heat pumps work in cold climates\\?$`, "m"));

    const failed = await tracelane(["researches", "--status", "failed", "--json"]);
    expect(failed.code).toBe(0);
    const body = JSON.parse(failed.stdout) as { researches: Array<{ id: string }> };
    expect(body.researches.map((r) => r.id)).toEqual([failedId]);
    expect(body).toEqual(await getJson("/v1/research?status=failed"));
  });

  it("trace prints the api's replay of the research's trace; --json is the trace", async () => {
    // The collector assembles spans asynchronously: wait for the last span to end, the last stage's
    // CONSUMER span (its worker exports spans in the order they end, so every other span is in by then).
    await waitFor(
      async () => {
        const res = await fetch(`${apiUrl}/v1/traces/${done.traceId}/replay`);
        const text = res.ok ? await res.text() : "";
        return text.includes("chat deepseek-v3.2") && text.includes("process research-synthesis");
      },
      { timeoutMs: 20_000, what: "the research's trace to be assembled" },
    );
    const replay = await (await fetch(`${apiUrl}/v1/traces/${done.traceId}/replay`)).text();
    const run = await tracelane(["trace", done.traceId]);
    expect(run.code).toBe(0);
    expect(run.stdout).toBe(`${replay.trimEnd()}\n`);

    const json = await tracelane(["trace", done.traceId, "--json"]);
    expect(json.code).toBe(0);
    expect(JSON.parse(json.stdout)).toEqual(await getJson(`/v1/traces/${done.traceId}`));
  });

  it("traces --since 1h --min-cost --anomaly lists the matching traces", async () => {
    const run = await tracelane(["traces", "--since", "1h", "--min-cost", "0.0001", "--anomaly", "high_latency"]);
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^started \(UTC\) +trace id +root span +status +duration +cost +calls +anomalies$/m);
    // Its model calls: analysis, synthesis, and each claim's turns in the fact-check.
    const view = (await getJson(`/v1/research/${done.id}`)) as { stages: { factcheck: { claims: Array<{ modelCalls: number }> } } };
    const calls = 2 + view.stages.factcheck.claims.reduce((n, c) => n + c.modelCalls, 0);
    expect(run.stdout).toMatch(new RegExp(`^\\S+ \\S+ +${done.traceId} +POST /v1/research +ok +.* ${calls} +\\S*high_latency`, "m"));

    const json = await tracelane(["traces", "--since", "1h", "--min-cost", "0.0001", "--anomaly", "high_latency", "--json"]);
    expect(json.code).toBe(0);
    const body = JSON.parse(json.stdout) as { traces: Array<{ traceId: string; costUsd: number; anomalyTypes: string[] }> };
    expect(body.traces.map((t) => t.traceId)).toContain(done.traceId);
    for (const t of body.traces) {
      expect(t.costUsd).toBeGreaterThanOrEqual(0.0001);
      expect(t.anomalyTypes).toContain("high_latency");
    }

    const none = await tracelane(["traces", "--since", "1h", "--min-cost", "1000"]);
    expect(none.code).toBe(0);
    expect(none.stdout).toMatch(/^no traces match since=\S+ minCostUsd=1000$/m);
  });

  it("costs --since 24h prints a table by stage and by model; --json is the api's figures", async () => {
    const run = await tracelane(["costs", "--since", "24h"]);
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^costs from \S+ \S+ to \S+ \S+: \d+ traces, \d+ model calls, \$\d+\.\d{6}/);
    expect(run.stdout).toMatch(/^of which useful \$\d+\.\d{6}, spent on failed attempts \(retried or given up\) \$\d+\.\d{6}$/m);
    expect(run.stdout).toMatch(/^stage +calls +errors +tokens in +tokens out +cost +retry cost +share +p50 +p95$/m);
    expect(run.stdout).toMatch(/^model +calls +errors/m);
    for (const [stage, model] of STAGES) {
      expect(run.stdout).toMatch(new RegExp(`^${stage} +\\d+ `, "m"));
      expect(run.stdout).toMatch(new RegExp(`^${model.replace(".", "\\.")} +\\d+ `, "m"));
    }

    const json = await tracelane(["costs", "--since", "24h", "--json"]);
    expect(json.code).toBe(0);
    const body = JSON.parse(json.stdout) as { calls: number; since: string; byStage: Record<string, { calls: number }> };
    const api = await getJson(`/v1/stats/costs?since=${encodeURIComponent(body.since)}`);
    expect(body.calls).toBe(api.calls);
    expect(body.byStage).toEqual(api.byStage);
    expect(Date.now() - Date.parse(body.since)).toBeGreaterThanOrEqual(24 * 3600_000);
    expect(Date.now() - Date.parse(body.since)).toBeLessThan(24 * 3600_000 + 60_000);
  });
});

describe("tracelane errors and exit codes", () => {
  it("exits 3 with what to do when nothing answers at TRACELANE_URL or --url", async () => {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const expected = `tracelane: cannot reach the tracelane api at ${url}: connection refused — start it with \`pnpm start\` or set TRACELANE_URL\n`;
    const viaEnv = await tracelane(["status", done.id], { TRACELANE_URL: url });
    expect(viaEnv).toEqual({ code: 3, stdout: "", stderr: expected });
    const viaFlag = await tracelane(["research", "q", "--wait", "--url", url], {});
    expect(viaFlag).toEqual({ code: 3, stdout: "", stderr: expected });
  });

  it("exits 4 with the api's message for an id that does not exist", async () => {
    const missing = "0123456789abcdef0123456789abcdef";
    const status = await tracelane(["status", missing]);
    expect(status.code).toBe(4);
    expect(status.stderr).toBe(
      `tracelane: the api answered 404 not_found: No research with id "${missing}". Check the id returned when it was created.\n`,
    );
    const trace = await tracelane(["trace", missing]);
    expect(trace.code).toBe(4);
    expect(trace.stderr).toContain(`No trace with id "${missing}"`);
  });

  it("exits 2 with the command's usage for a bad flag, value or command line", async () => {
    const flag = await tracelane(["traces", "--bogus"]);
    expect(flag.code).toBe(2);
    expect(flag.stdout).toBe("");
    expect(flag.stderr).toMatch(/^tracelane: unknown option --bogus\n\nUsage: tracelane traces \[options\]\n/);

    const value = await tracelane(["traces", "--since", "yesterday"]);
    expect(value.code).toBe(2);
    expect(value.stderr).toMatch(/^tracelane: --since: must be a duration back from now such as 30m, 1h, 7d, or an ISO time/);

    const missingValue = await tracelane(["costs", "--since"]);
    expect(missingValue.code).toBe(2);
    expect(missingValue.stderr).toMatch(/^tracelane: --since needs a value\n/);

    const noQuery = await tracelane(["research", "--wait"]);
    expect(noQuery.code).toBe(2);
    expect(noQuery.stderr).toMatch(/^tracelane: missing <query>\n\nUsage: tracelane research/);

    const command = await tracelane(["tarce", done.traceId]);
    expect(command.code).toBe(2);
    expect(command.stderr).toMatch(/^tracelane: unknown command "tarce"\n\nUsage: tracelane <command>/);

    // The api's own validation (a 400) is a usage error too, its message shown as it is.
    const refused = await tracelane(["traces", "--anomaly", "slow"]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/^tracelane: the api answered 400 invalid_query: Invalid query parameters: anomaly: must be one of /);
  });

  it("stops quietly with 141 when its output pipe closes early (| head)", async () => {
    const run = await new Promise<Run>((resolve) => {
      const script = `"${process.execPath}" "${BIN}" research "How do tides work?" --wait | head -1`;
      execFile(
        "bash",
        ["-o", "pipefail", "-c", script],
        { env: { ...process.env, TRACELANE_URL: apiUrl }, timeout: 60_000 },
        (err, stdout, stderr) => resolve({ code: err ? (typeof err.code === "number" ? err.code : -1) : 0, stdout, stderr }),
      );
    });
    expect(run).toEqual({ code: 141, stdout: expect.stringMatching(/^research [0-9a-f]{32} submitted/), stderr: "" });
  });

  it("--help prints the commands and exit codes and exits 0", async () => {
    const run = await tracelane(["--help"], {});
    expect(run.code).toBe(0);
    for (const cmd of ["research", "status", "trace", "traces", "costs"]) expect(run.stdout).toMatch(new RegExp(`^  ${cmd} `, "m"));
    expect(run.stdout).toContain("Exit codes:");
    const sub = await tracelane(["traces", "--help"], {});
    expect(sub.code).toBe(0);
    expect(sub.stdout).toMatch(/^Usage: tracelane traces/);
  });
});
