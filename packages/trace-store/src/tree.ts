import { ATTR_STAGE } from "@tracelane/pipeline";
import type { SpanRecord, SpanTreeNode } from "./types.js";

const STAGE_ATTR = ATTR_STAGE;

const ownStage = (s: SpanRecord): string | undefined => {
  const v = s.attributes[STAGE_ATTR];
  return typeof v === "string" && v !== "" ? v : undefined;
};

/**
 * The pipeline stage of every span: its own `tracelane.stage`; for a queue span
 * (producer/consumer) without one, the stage found nearest below it (the
 * `process research-analysis` span takes the stage of its model call); otherwise
 * the stage of its nearest ancestor (an HTTP attempt under a model call).
 */
export function resolveStages(spans: readonly SpanRecord[]): Map<string, string | undefined> {
  const byId = new Map(spans.map((s) => [s.spanId, s]));
  const children = childrenOf(spans, byId);
  const stage = new Map<string, string | undefined>();
  for (const s of spans) stage.set(s.spanId, ownStage(s));

  for (const s of spans) {
    if (stage.get(s.spanId) !== undefined || (s.kind !== "producer" && s.kind !== "consumer")) continue;
    let level = children.get(s.spanId) ?? [];
    const seen = new Set<string>([s.spanId]);
    while (level.length > 0) {
      const found = new Set(level.map(ownStage).filter((x): x is string => x !== undefined));
      if (found.size > 0) {
        if (found.size === 1) stage.set(s.spanId, [...found][0]);
        break;
      }
      const next: SpanRecord[] = [];
      for (const c of level) {
        if (seen.has(c.spanId)) continue;
        seen.add(c.spanId);
        next.push(...(children.get(c.spanId) ?? []));
      }
      level = next;
    }
  }

  const resolved = new Map<string, string | undefined>();
  const resolve = (s: SpanRecord, depth: number): string | undefined => {
    if (resolved.has(s.spanId)) return resolved.get(s.spanId);
    let value = stage.get(s.spanId);
    if (value === undefined && s.parentSpanId && depth < 256) {
      const parent = byId.get(s.parentSpanId);
      if (parent) value = resolve(parent, depth + 1);
    }
    resolved.set(s.spanId, value);
    return value;
  };
  for (const s of spans) resolve(s, 0);
  return resolved;
}

const byStart = (a: SpanRecord, b: SpanRecord) => a.startMs - b.startMs || (a.spanId < b.spanId ? -1 : a.spanId > b.spanId ? 1 : 0);

function childrenOf(spans: readonly SpanRecord[], byId: Map<string, SpanRecord>): Map<string, SpanRecord[]> {
  const children = new Map<string, SpanRecord[]>();
  for (const s of spans) {
    if (!s.parentSpanId || !byId.has(s.parentSpanId) || s.parentSpanId === s.spanId) continue;
    const list = children.get(s.parentSpanId);
    if (list) list.push(s);
    else children.set(s.parentSpanId, [s]);
  }
  for (const list of children.values()) list.sort(byStart);
  return children;
}

/**
 * Spans as a forest ordered by start time: roots are spans without a parent or whose
 * parent has not arrived (or was dropped over the cap).
 */
export function buildTree(spans: readonly SpanRecord[], stages = resolveStages(spans)): SpanTreeNode[] {
  const byId = new Map(spans.map((s) => [s.spanId, s]));
  const children = childrenOf(spans, byId);
  const placed = new Set<string>();
  const node = (s: SpanRecord, depth: number): SpanTreeNode => {
    placed.add(s.spanId);
    const kids = (children.get(s.spanId) ?? []).filter((c) => !placed.has(c.spanId));
    const stage = stages.get(s.spanId);
    return { ...s, depth, ...(stage ? { stage } : {}), children: kids.map((c) => node(c, depth + 1)) };
  };
  const roots = spans.filter((s) => !s.parentSpanId || !byId.has(s.parentSpanId) || s.parentSpanId === s.spanId).sort(byStart);
  const forest = roots.map((r) => node(r, 0));
  // Spans caught in a parent cycle (malformed input) are shown as roots rather than lost.
  for (const s of [...spans].sort(byStart)) if (!placed.has(s.spanId)) forest.push(node(s, 0));
  return forest;
}

/** Depth-first, in display order. */
export function flattenTree(tree: readonly SpanTreeNode[]): SpanTreeNode[] {
  const out: SpanTreeNode[] = [];
  const walk = (n: SpanTreeNode) => {
    out.push(n);
    n.children.forEach(walk);
  };
  tree.forEach(walk);
  return out;
}
