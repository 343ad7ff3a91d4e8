import { flattenTree } from "./tree.js";
import type { SpanTreeNode, TraceDetail } from "./types.js";
import {
  ATTR_ERROR_TYPE,
  ATTR_HTTP_REQUEST_RESEND_COUNT,
  ATTR_HTTP_RESPONSE_STATUS_CODE,
  ATTR_JOB_ATTEMPT,
  ATTR_QUEUE_WAIT_MS,
  ATTR_GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK,
} from "@tracelane/tracing/attributes";
import { ATTR_CLAIM_COUNT, ATTR_CLAIM_INDEX, ATTR_CLAIM_VERDICT } from "@tracelane/pipeline";

const MAX_INDENT = 40;

const ms = (v: number) => `${Math.round(v).toLocaleString("en-US")} ms`;
const usd = (v: number) => `$${v.toFixed(6)}`;
const int = (v: number) => v.toLocaleString("en-US");

function errorText(span: SpanTreeNode): string {
  const exception = span.events?.find((e) => e.name === "exception");
  const type = span.attributes[ATTR_ERROR_TYPE] ?? exception?.attributes?.["exception.type"];
  const message = span.statusMessage || exception?.attributes?.["exception.message"];
  return (
    [type, message]
      .filter((x) => x !== undefined && x !== "")
      .map(String)
      .join(": ") || "error"
  );
}

function spanLine(n: SpanTreeNode): string {
  const parts = [`${n.status === "error" ? "✗" : "✓"} ${n.name}`, ms(n.durationMs)];
  if (n.stage) parts.push(`[${n.stage}]`);
  const wait = n.attributes[ATTR_QUEUE_WAIT_MS];
  if (typeof wait === "number") parts.push(`queue wait ${ms(wait)}`);
  const attempt = n.attributes[ATTR_JOB_ATTEMPT];
  if (typeof attempt === "number" && attempt > 1) parts.push(`attempt ${attempt}`);
  // The fan-out: which claim a job checks and its verdict; the agent that fans out, and the one that fans in.
  const claim = n.attributes[ATTR_CLAIM_INDEX];
  if (typeof claim === "number" && n.kind === "consumer") parts.push(`claim ${claim}`);
  const verdict = n.attributes[ATTR_CLAIM_VERDICT];
  if (typeof verdict === "string" && n.kind === "consumer") parts.push(`-> ${verdict}`);
  const count = n.attributes[ATTR_CLAIM_COUNT];
  if (typeof count === "number" && n.name.startsWith("invoke_agent ")) {
    parts.push(n.links?.length ? `fan-in of ${count} claims (linked to each claim's job)` : `fans out ${count} claims`);
  }
  const ttfc = n.attributes[ATTR_GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK];
  if (typeof ttfc === "number") parts.push(`streamed, first chunk ${ms(ttfc * 1000)}`);
  if (n.call) {
    parts.push(n.call.model);
    parts.push(`tokens in ${int(n.call.inputTokens)} / out ${int(n.call.outputTokens)}`);
    parts.push(n.call.costUsd === null ? "unpriced" : usd(n.call.costUsd));
  }
  const http = n.attributes[ATTR_HTTP_RESPONSE_STATUS_CODE];
  if (http !== undefined) parts.push(`http ${http}`);
  const resend = n.attributes[ATTR_HTTP_REQUEST_RESEND_COUNT];
  if (typeof resend === "number" && resend > 0) parts.push(`resend ${resend}`);
  return parts.join("  ");
}

/**
 * A plain-text replay of a trace: a header, then one line per span indented by depth
 * (✓/✗, name, duration, stage, model, tokens, cost), errors on an extra line under their span.
 */
export function renderReplay(trace: TraceDetail): string {
  const s = trace.summary;
  const lines = [
    `trace ${s.traceId}  ${s.rootName}  ${s.status}  ${ms(s.durationMs)}  ${usd(s.costUsd)}` +
      `${s.unpricedCalls > 0 ? ` (+${s.unpricedCalls} unpriced)` : ""}  tokens in ${int(s.inputTokens)} / out ${int(s.outputTokens)}  ` +
      `${s.spanCount} spans${s.droppedSpans > 0 ? ` (+${s.droppedSpans} dropped)` : ""}`,
  ];
  for (const n of flattenTree(trace.tree)) {
    // Indentation stops growing past MAX_INDENT levels (the depth is printed instead): a chain
    // thousands deep would otherwise make the replay quadratic in size.
    const indent = n.depth > MAX_INDENT ? `${"  ".repeat(MAX_INDENT)}[depth ${n.depth}] ` : "  ".repeat(n.depth);
    lines.push(indent + spanLine(n));
    if (n.status === "error") lines.push(`${indent}    ! ${errorText(n)}`);
  }
  if (trace.anomalies.length > 0) {
    lines.push("anomalies:");
    for (const a of trace.anomalies) lines.push(`  - ${a.type}: ${a.message} -> ${a.recommendation}`);
  }
  return `${lines.join("\n")}\n`;
}
