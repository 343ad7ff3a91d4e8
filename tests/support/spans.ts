import { SpanKind } from "@opentelemetry/api";
import type { InMemoryTracing, ReadableSpan } from "@tracelane/tracing/testing";
import { waitFor } from "@tracelane/testkit";

/** The spans of one trace, as the in-memory exporter recorded them. */
export class TraceSpans {
  constructor(readonly spans: readonly ReadableSpan[]) {}

  /** The one span with this name (and kind, when given); fails listing what there is. */
  one(name: string, kind?: SpanKind): ReadableSpan {
    const found = this.all(name, kind);
    if (found.length !== 1) {
      throw new Error(
        `expected one span "${name}"${kind !== undefined ? ` of kind ${SpanKind[kind]}` : ""}, found ${found.length}; trace has:\n${this.describe()}`,
      );
    }
    return found[0]!;
  }

  all(name: string, kind?: SpanKind): ReadableSpan[] {
    return this.spans.filter((s) => s.name === name && (kind === undefined || s.kind === kind));
  }

  childrenOf(parent: ReadableSpan): ReadableSpan[] {
    const id = parent.spanContext().spanId;
    return this.spans.filter((s) => s.parentSpanContext?.spanId === id).sort((a, b) => hrMs(a.startTime) - hrMs(b.startTime));
  }

  /** One line per span, indented under its parent: what a failing assertion should show. */
  describe(): string {
    const ids = new Set(this.spans.map((s) => s.spanContext().spanId));
    const roots = this.spans.filter((s) => !s.parentSpanContext || !ids.has(s.parentSpanContext.spanId));
    const lines: string[] = [];
    const walk = (s: ReadableSpan, depth: number) => {
      lines.push(`${"  ".repeat(depth)}${SpanKind[s.kind]} ${s.name} [${s.spanContext().spanId}]`);
      for (const c of this.childrenOf(s)) walk(c, depth + 1);
    };
    for (const r of roots) walk(r, 0);
    return lines.join("\n");
  }
}

export const hrMs = ([s, ns]: [number, number]) => s * 1e3 + ns / 1e6;

export const parentIdOf = (span: ReadableSpan) => span.parentSpanContext?.spanId;
export const idOf = (span: ReadableSpan) => span.spanContext().spanId;

/**
 * Wait until the trace has at least `count` finished spans (the last CONSUMER span ends just after the
 * record says "completed"), then a moment more so a span too many would show up too.
 */
export async function waitForTrace(tracing: InMemoryTracing, traceId: string, count: number, timeoutMs = 10_000): Promise<TraceSpans> {
  const ofTrace = () => tracing.spans().filter((s) => s.spanContext().traceId === traceId);
  try {
    await waitFor(() => ofTrace().length >= count, { timeoutMs, intervalMs: 20, what: `${count} spans of trace ${traceId}` });
  } catch (err) {
    throw new Error(`${(err as Error).message}; have ${ofTrace().length}:\n${new TraceSpans(ofTrace()).describe()}`, { cause: err });
  }
  await new Promise((r) => setTimeout(r, 150));
  return new TraceSpans(ofTrace());
}

/** Everything a span could leak through: attributes, events, links, status, resource. */
export function serializeSpans(spans: readonly ReadableSpan[]): string {
  return JSON.stringify(
    spans.map((s) => ({
      name: s.name,
      attributes: s.attributes,
      events: s.events,
      links: s.links,
      status: s.status,
      resource: s.resource.attributes,
      scope: s.instrumentationScope,
    })),
  );
}

// The shape of a completed research's trace and calls (shared with the bench).
export { modelCallsOfResearch, spansOfResearch } from "@tracelane/testkit";
