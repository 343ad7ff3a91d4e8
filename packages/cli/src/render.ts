import type { ApiClient } from "./client.js";
import { duration, table, time, usd } from "./format.js";
import type { ResearchView } from "./schemas.js";

/** An api link (`/ui/traces/…`, relative to the api) as a full URL, under TRACELANE_URL's path. */
export const absolute = (api: ApiClient, link: string) => (/^https?:\/\//.test(link) ? link : api.url(link));

/** The console page of a research's trace: the api's `links.ui` when it gives one, else the console's path. */
export function consoleLink(
  api: ApiClient,
  view: { traceId: string | null; links?: { ui?: string | undefined } | undefined },
): string | undefined {
  if (view.links?.ui) return absolute(api, view.links.ui);
  return view.traceId ? api.url(`ui/traces/${view.traceId}`) : undefined;
}

/** The report is the last stage's output (`result` lists outputs in pipeline order). */
export function reportOf(view: ResearchView): string | undefined {
  const outputs = Object.values(view.result ?? {});
  return outputs[outputs.length - 1];
}

/** A research as a person reads it: what it is, its report, one row per stage, totals, what failed, where to look next. */
export function renderResearch(api: ApiClient, view: ResearchView): string {
  const lines: string[] = [];
  const took = view.finishedAt ? ` in ${duration(view.totals.latencyMs)}` : ` for ${duration(view.totals.latencyMs)} so far`;
  const where = (view.status === "queued" || view.status === "running") && view.stage ? ` (${view.stage})` : "";
  lines.push(`research ${view.id}: ${view.status}${where}${took}`);
  lines.push(`query:   ${view.query}`);
  lines.push(`created: ${time(view.createdAt)}${view.finishedAt ? `   finished: ${time(view.finishedAt)}` : ""}`);

  const report = view.status === "completed" ? reportOf(view) : undefined;
  if (report !== undefined) lines.push("", "=== report ===", "", report.trim(), "");
  else lines.push("");

  const rows = Object.entries(view.stages).map(([stage, s]) => [
    stage,
    s.status,
    s.model ?? "-",
    s.attempts,
    s.usage?.inputTokens ?? "-",
    s.usage?.outputTokens ?? "-",
    s.usage || s.costUsd !== undefined ? usd(s.costUsd) : "-",
    duration(s.latencyMs),
    duration(s.queueWaitMs),
  ]);
  rows.push([
    "total",
    "",
    "",
    "",
    view.totals.inputTokens,
    view.totals.outputTokens,
    usd(view.totals.costUsd),
    duration(view.totals.latencyMs),
    "",
  ]);
  lines.push(table(["stage", "status", "model", "attempts", "tokens in", "tokens out", "cost", "latency", "queue wait"], rows, [0, 1, 2]));
  // A fan-out stage's claims, one row each: what was checked, the verdict, what it took.
  for (const [stage, s] of Object.entries(view.stages)) {
    if (!s.claims?.length) continue;
    lines.push("", `${stage}: ${s.claims.length} claims, each checked as its own job`);
    const claimRows = s.claims.map((c) => [
      c.index,
      c.verdict ?? c.status,
      c.modelCalls ?? "-",
      c.toolCalls ?? "-",
      c.attempts,
      c.costUsd === undefined ? "-" : usd(c.costUsd),
      duration(c.latencyMs),
      `${c.claim.length > 70 ? `${c.claim.slice(0, 69)}…` : c.claim}${c.error ? ` (${c.error.type}: ${c.error.message})` : ""}`,
    ]);
    lines.push(table(["#", "verdict", "calls", "searches", "attempts", "cost", "latency", "claim"], claimRows, [0, 1, 7]));
  }
  if (view.totals.unpricedModels.length > 0) {
    lines.push(`(not in the price table, so not in the total: ${view.totals.unpricedModels.join(", ")})`);
  }

  if (view.error) {
    const at = view.error.stage ? ` at ${view.error.stage}` : "";
    lines.push("", `${view.status}${at} (${view.error.type}): ${view.error.message}`);
  }
  const partial = Object.keys(view.partialResult ?? {});
  if (partial.length > 0) lines.push(`partial results: ${partial.join(", ")} (tracelane status ${view.id} --json shows them)`);

  lines.push("");
  if (view.traceId) {
    lines.push(`trace:    tracelane trace ${view.traceId}`);
    const ui = consoleLink(api, view);
    if (ui) lines.push(`console:  ${ui}`);
  }
  if (view.status === "queued" || view.status === "running") lines.push(`follow:   tracelane status ${view.id}`);
  return lines.join("\n");
}
