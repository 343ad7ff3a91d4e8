import type { ApiClient } from "./client.js";
import { EXIT } from "./errors.js";
import { duration, percent, table, time, usd } from "./format.js";
import type { Output } from "./research.js";
import { CostStatsSchema, ResearchListSchema, TraceListSchema, WhatIfSchema, type GroupCost } from "./schemas.js";

/** `tracelane trace <traceId>`: the replay as the api renders it; --json the trace itself. */
export async function showTrace(api: ApiClient, traceId: string, json: boolean, io: Output): Promise<number> {
  const id = encodeURIComponent(traceId);
  const raw = await api.request(json ? `v1/traces/${id}` : `v1/traces/${id}/replay`);
  io.out(raw.text.trimEnd());
  return EXIT.ok;
}

const shorten = (text: string, max: number) => {
  const line = text.replace(/\s+/g, " ").trim();
  return line.length > max ? `${line.slice(0, max - 1)}…` : line;
};

const filtersText = (params: URLSearchParams) => (params.size > 0 ? ` ${[...params].map(([k, v]) => `${k}=${v}`).join(" ")}` : "");

/** `tracelane researches [filters]`: one row per research. */
export async function listResearches(api: ApiClient, params: URLSearchParams, json: boolean, io: Output): Promise<number> {
  const query = params.size > 0 ? `?${params.toString()}` : "";
  const { raw, data } = await api.getJson(`v1/research${query}`, ResearchListSchema);
  if (json) {
    io.out(raw.text);
    return EXIT.ok;
  }
  if (data.researches.length === 0) {
    io.out(`no researches match${filtersText(params)}`);
    return EXIT.ok;
  }
  const rows = data.researches.map((r) => [
    time(r.createdAt),
    r.id,
    r.status,
    r.stage ?? (r.error?.stage ? `${r.error.stage} (${r.error.type})` : "-"),
    duration(r.totals.latencyMs),
    usd(r.totals.costUsd),
    r.anomalyTypes.join(",") || "-",
    shorten(r.query, 50),
  ]);
  io.out(table(["created (UTC)", "research id", "status", "stage", "duration", "cost", "anomalies", "query"], rows, [0, 1, 2, 3, 6, 7]));
  const more = data.nextCursor ? `\nmore: the same command with --cursor ${data.nextCursor}` : "";
  io.out(
    `${data.researches.length} research${data.researches.length === 1 ? "" : "es"}${more}\none of them: tracelane status <research id>`,
  );
  return EXIT.ok;
}

/** `tracelane traces [filters]`: one row per trace. */
export async function listTraces(api: ApiClient, params: URLSearchParams, json: boolean, io: Output): Promise<number> {
  const query = params.size > 0 ? `?${params.toString()}` : "";
  const { raw, data } = await api.getJson(`v1/traces${query}`, TraceListSchema);
  if (json) {
    io.out(raw.text);
    return EXIT.ok;
  }
  if (data.traces.length === 0) {
    io.out(`no traces match${filtersText(params)}`);
    return EXIT.ok;
  }
  const rows = data.traces.map((t) => [
    time(t.startedAt),
    t.traceId,
    t.rootName,
    t.status,
    duration(t.durationMs),
    t.callCount === 0 ? "-" : t.unpricedCalls > 0 ? `${usd(t.costUsd)}+unpriced` : usd(t.costUsd),
    t.callCount,
    t.anomalyTypes.join(",") || "-",
  ]);
  io.out(table(["started (UTC)", "trace id", "root span", "status", "duration", "cost", "calls", "anomalies"], rows, [0, 1, 2, 3, 7]));
  const more = data.nextCursor ? `\nmore: the same command with --cursor ${data.nextCursor}` : "";
  io.out(`${data.traces.length} trace${data.traces.length === 1 ? "" : "s"}${more}\nreplay one: tracelane trace <trace id>`);
  return EXIT.ok;
}

/** `tracelane costs [--since 24h]`: by stage, then by model. */
export async function showCosts(api: ApiClient, params: URLSearchParams, json: boolean, io: Output): Promise<number> {
  const query = params.size > 0 ? `?${params.toString()}` : "";
  const { raw, data } = await api.getJson(`v1/stats/costs${query}`, CostStatsSchema);
  if (json) {
    io.out(raw.text);
    return EXIT.ok;
  }
  const lines = [
    `costs from ${time(data.since)} to ${time(data.until)}: ${data.traces} traces, ${data.calls} model calls, ${usd(data.costUsd)}, ${data.inputTokens} in / ${data.outputTokens} out tokens`,
  ];
  if (data.retryCostUsd !== undefined && data.usefulCostUsd !== undefined) {
    lines.push(`of which useful ${usd(data.usefulCostUsd)}, spent on failed attempts (retried or given up) ${usd(data.retryCostUsd)}`);
  }
  if (data.unpricedCalls > 0) lines.push(`(${data.unpricedCalls} calls to unpriced models are not in the cost)`);
  if (data.truncated) lines.push("(more traces matched than one query reads: the figures cover the newest; narrow the window)");
  if (data.calls === 0) {
    lines.push("no model calls in this window");
  } else {
    lines.push("", groupTable("stage", data.byStage), "", groupTable("model", data.byModel));
  }
  io.out(lines.join("\n"));
  return EXIT.ok;
}

function groupTable(key: string, groups: Record<string, GroupCost>): string {
  const rows = Object.entries(groups).map(([name, g]) => [
    name,
    g.calls,
    g.errors > 0 ? `${g.errors} (${percent(g.errorRate)})` : "0",
    g.inputTokens,
    g.outputTokens,
    g.unpricedCalls === g.calls ? "unpriced" : usd(g.costUsd),
    g.retryCostUsd === undefined ? "-" : usd(g.retryCostUsd),
    percent(g.costShare),
    duration(g.latencyMs.p50),
    duration(g.latencyMs.p95),
  ]);
  return table([key, "calls", "errors", "tokens in", "tokens out", "cost", "retry cost", "share", "p50", "p95"], rows);
}

/** `tracelane what-if --swap <stage>:<model> [--since 7d | --trace <id>]`: per stage actual vs what-if, flags, assumptions. */
export async function showWhatIf(
  api: ApiClient,
  traceId: string | undefined,
  params: URLSearchParams,
  json: boolean,
  io: Output,
): Promise<number> {
  const path = traceId ? `v1/traces/${encodeURIComponent(traceId)}/what-if` : "v1/stats/what-if";
  const { raw, data } = await api.getJson(`${path}?${params.toString()}`, WhatIfSchema);
  if (json) {
    io.out(raw.text);
    return EXIT.ok;
  }
  const swaps = params.getAll("swap").join(", ");
  const over =
    data.traceId !== undefined
      ? `trace ${data.traceId}`
      : `${data.traces ?? 0} trace${data.traces === 1 ? "" : "s"} from ${time(data.since ?? "")} to ${time(data.until ?? "")}`;
  const lines = [`what-if ${swaps} over ${over}`];
  if (data.truncated) lines.push(`(${data.truncatedNote ?? "more traces matched than one request reads: narrow the window"})`);
  const stages = Object.entries(data.byStage);
  if (stages.length === 0) {
    lines.push("no model calls to price in this window");
    io.out(lines.join("\n"));
    return EXIT.ok;
  }
  const saving = (actual: number, whatIf: number) => signedUsd(actual - whatIf);
  const share = (actual: number, whatIf: number) => (actual > 0 ? percent((actual - whatIf) / actual) : "-");
  const rows = stages.map(([stage, s]) => [
    stage,
    s.whatIfModel === s.model ? `${s.model} (kept)` : `${s.model} → ${s.whatIfModel}`,
    s.calls,
    usd(s.actualCostUsd),
    usd(s.whatIfCostUsd),
    saving(s.actualCostUsd, s.whatIfCostUsd),
    share(s.actualCostUsd, s.whatIfCostUsd),
    s.flaggedCalls + s.unpricedCalls > 0
      ? [s.flaggedCalls && `${s.flaggedCalls} flagged`, s.unpricedCalls && `${s.unpricedCalls} unpriced`].filter(Boolean).join(", ")
      : "",
  ]);
  rows.push([
    "total",
    "",
    stages.reduce((n, [, s]) => n + s.calls, 0),
    usd(data.actualCostUsd),
    usd(data.whatIfCostUsd),
    signedUsd(data.savingUsd),
    data.actualCostUsd > 0 ? percent(data.savingShare) : "-",
    "",
  ]);
  lines.push("", table(["stage", "model → what-if model", "calls", "actual", "what-if", "saving", "share", "left out"], rows, [0, 1, 7]));
  const flagged = data.flaggedCalls ?? data.flags.length;
  if (flagged > 0) {
    lines.push(
      "",
      `${flagged} call${flagged === 1 ? "" : "s"} would not fit the swapped model's context window (not priced, left out of both totals):`,
    );
    for (const f of data.flags) {
      const where = [f.traceId && `trace ${f.traceId}`, f.spanId && `span ${f.spanId}`].filter(Boolean).join(", ");
      lines.push(`  ${f.message}${where ? ` (${where})` : ""}`);
    }
    if (flagged > data.flags.length)
      lines.push(`  … and ${flagged - data.flags.length} more (--json lists the first ${data.flags.length})`);
  }
  lines.push("", "assumes:", ...data.assumptions.map((a) => `  - ${a}`));
  io.out(lines.join("\n"));
  return EXIT.ok;
}

/** A saving: "$0.001234", or "-$0.001234" when the swap costs more. */
const signedUsd = (v: number) => (v < 0 ? `-${usd(-v)}` : usd(v));
