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
 * `process research-analysis` span takes the stage of its model call) when that
 * nearest level names exactly one stage; otherwise the stage of its nearest ancestor
 * (an HTTP attempt under a model call).
 *
 * Linear in spans and free of recursion: traces arrive from anyone over OTLP, and a
 * parent chain thousands of spans deep must not blow the stack or go quadratic.
 */
export function resolveStages(spans: readonly SpanRecord[]): Map<string, string | undefined> {
  const byId = new Map(spans.map((s) => [s.spanId, s]));
  const children = childrenOf(spans, byId);
  const below = nearestStagesBelow(spans, children);
  const stage = new Map<string, string | undefined>();
  for (const s of spans) {
    let own = ownStage(s);
    if (own === undefined && (s.kind === "producer" || s.kind === "consumer")) {
      const found = below.get(s.spanId);
      if (found?.size === 1) own = [...found][0];
    }
    stage.set(s.spanId, own);
  }

  // Inherit from the nearest ancestor that has one: walk up once per unresolved chain.
  const resolved = new Map<string, string | undefined>();
  for (const s of spans) {
    if (resolved.has(s.spanId)) continue;
    const chain: SpanRecord[] = [];
    const onChain = new Set<string>();
    let cur: SpanRecord | undefined = s;
    let value: string | undefined;
    while (cur && !onChain.has(cur.spanId)) {
      if (resolved.has(cur.spanId)) {
        value = resolved.get(cur.spanId);
        break;
      }
      value = stage.get(cur.spanId);
      if (value !== undefined) break;
      chain.push(cur);
      onChain.add(cur.spanId);
      cur = cur.parentSpanId && cur.parentSpanId !== cur.spanId ? byId.get(cur.parentSpanId) : undefined;
    }
    if (cur && value !== undefined && !resolved.has(cur.spanId)) resolved.set(cur.spanId, value);
    for (const c of chain) resolved.set(c.spanId, value);
  }
  return resolved;
}

/**
 * For every span, the own stages of its descendants at the nearest level that has any
 * (at most two kept: only "exactly one" matters). One post-order pass over the forest.
 */
function nearestStagesBelow(spans: readonly SpanRecord[], children: Map<string, SpanRecord[]>): Map<string, Set<string>> {
  const level = new Map<string, number>();
  const found = new Map<string, Set<string>>();
  const done = new Set<string>();
  const entered = new Set<string>();
  for (const start of spans) {
    if (entered.has(start.spanId)) continue;
    const stack: SpanRecord[] = [start];
    while (stack.length > 0) {
      const s = stack[stack.length - 1]!;
      const kids = children.get(s.spanId) ?? [];
      if (!entered.has(s.spanId)) {
        entered.add(s.spanId);
        for (const k of kids) if (!entered.has(k.spanId)) stack.push(k);
        continue;
      }
      stack.pop();
      if (done.has(s.spanId)) continue;
      done.add(s.spanId);
      let best = Infinity;
      let set = new Set<string>();
      for (const k of kids) {
        const own = ownStage(k);
        const kLevel = own !== undefined ? 1 : (level.get(k.spanId) ?? Infinity) + 1;
        if (kLevel > best || kLevel === Infinity) continue;
        if (kLevel < best) {
          best = kLevel;
          set = new Set();
        }
        if (own !== undefined) set.add(own);
        else for (const v of found.get(k.spanId) ?? []) if (set.size < 2) set.add(v);
      }
      if (best !== Infinity) {
        level.set(s.spanId, best);
        found.set(s.spanId, set);
      }
    }
  }
  return found;
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

/** Spans deeper than this in their trace are cut from its tree (TRACELANE_MAX_TRACE_DEPTH). */
export const MAX_TRACE_DEPTH_DEFAULT = 1_000;

/**
 * Every span's depth in its trace: 0 for a root (no parent, its parent not arrived, or caught in a
 * parent cycle), else its parent's + 1. Spans arrive in any order, so depth is a property of the
 * spans held, computed when a trace is assembled or read. Linear: each chain is walked once.
 */
export function spanDepths(spans: readonly SpanRecord[]): Map<string, number> {
  const byId = new Map(spans.map((s) => [s.spanId, s]));
  const depth = new Map<string, number>();
  for (const s of spans) {
    if (depth.has(s.spanId)) continue;
    const chain: SpanRecord[] = [];
    const onChain = new Set<string>();
    let cur: SpanRecord | undefined = s;
    let base = -1;
    while (cur) {
      const known = depth.get(cur.spanId);
      if (known !== undefined) {
        base = known;
        break;
      }
      if (onChain.has(cur.spanId)) {
        // A cycle: its members are roots (as buildTree shows them); the rest of the chain hangs below.
        while (chain.length > 0) {
          const c = chain.pop()!;
          depth.set(c.spanId, 0);
          if (c.spanId === cur.spanId) break;
        }
        base = 0;
        break;
      }
      chain.push(cur);
      onChain.add(cur.spanId);
      cur = cur.parentSpanId && cur.parentSpanId !== cur.spanId ? byId.get(cur.parentSpanId) : undefined;
    }
    for (let i = chain.length - 1; i >= 0; i--) depth.set(chain[i]!.spanId, ++base);
  }
  return depth;
}

/**
 * Spans as a forest ordered by start time: roots are spans without a parent or whose
 * parent has not arrived (or was dropped over the cap). Built without recursion. A span deeper
 * than `maxDepth` is cut (with everything below it): the reader passes the collector's limit, as a
 * chain thousands of spans deep would otherwise nest that deep in every JSON answer.
 */
export function buildTree(spans: readonly SpanRecord[], stages = resolveStages(spans), maxDepth = Infinity): SpanTreeNode[] {
  const byId = new Map(spans.map((s) => [s.spanId, s]));
  const children = childrenOf(spans, byId);
  const placed = new Set<string>();
  const depths = spanDepths(spans);
  for (const s of spans) if ((depths.get(s.spanId) ?? 0) > maxDepth) placed.add(s.spanId);
  const forest: SpanTreeNode[] = [];
  const plant = (root: SpanRecord) => {
    const make = (s: SpanRecord, depth: number): SpanTreeNode => {
      placed.add(s.spanId);
      const stage = stages.get(s.spanId);
      return { ...s, depth, ...(stage ? { stage } : {}), children: [] };
    };
    const top = make(root, 0);
    forest.push(top);
    const stack: Array<{ node: SpanTreeNode; kids: SpanRecord[]; next: number }> = [
      { node: top, kids: children.get(root.spanId) ?? [], next: 0 },
    ];
    while (stack.length > 0) {
      const frame = stack[stack.length - 1]!;
      if (frame.next >= frame.kids.length) {
        stack.pop();
        continue;
      }
      const kid = frame.kids[frame.next++]!;
      if (placed.has(kid.spanId)) continue;
      const child = make(kid, frame.node.depth + 1);
      frame.node.children.push(child);
      stack.push({ node: child, kids: children.get(kid.spanId) ?? [], next: 0 });
    }
  };
  const roots = spans.filter((s) => !s.parentSpanId || !byId.has(s.parentSpanId) || s.parentSpanId === s.spanId).sort(byStart);
  for (const r of roots) plant(r);
  // Spans caught in a parent cycle (malformed input) are shown as roots rather than lost.
  for (const s of [...spans].sort(byStart)) if (!placed.has(s.spanId)) plant(s);
  return forest;
}

/** Depth-first, in display order (iterative: a tree may be thousands of levels deep). */
export function flattenTree(tree: readonly SpanTreeNode[]): SpanTreeNode[] {
  const out: SpanTreeNode[] = [];
  const stack: SpanTreeNode[] = [...tree].reverse();
  while (stack.length > 0) {
    const n = stack.pop()!;
    out.push(n);
    for (let i = n.children.length - 1; i >= 0; i--) stack.push(n.children[i]!);
  }
  return out;
}
