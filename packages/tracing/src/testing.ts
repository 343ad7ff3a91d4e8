import {
  InMemorySpanExporter,
  ParentBasedSampler,
  AlwaysOnSampler,
  SimpleSpanProcessor,
  type ReadableSpan,
} from "@opentelemetry/sdk-trace-base";
import { NodeTracerProvider } from "@opentelemetry/sdk-trace-node";
import { registerTracingGlobals } from "./globals.js";
import { UntracedHttpRootsSampler, type UntracedRootRule } from "./sampler.js";

export type { ReadableSpan };

export interface InMemoryTracing {
  exporter: InMemorySpanExporter;
  /** Spans ended so far, in end order. */
  spans(): ReadableSpan[];
  /** The one finished span with this name; throws when there is none or more than one. */
  spanNamed(name: string): ReadableSpan;
  /** Forget the spans recorded so far. */
  reset(): void;
  /** Unregister from the OpenTelemetry API so a later test can register again. */
  shutdown(): Promise<void>;
}

/**
 * Tracing for tests: a tracer provider exporting synchronously to memory, with
 * the AsyncLocalStorage context manager and the W3C propagator registered
 * globally, exactly as startTracing wires them. Assert span trees on
 * `spans()` (ids, `parentSpanContext`, kinds, attributes); call `shutdown()` in
 * afterAll/afterEach.
 */
export function useInMemoryTracing(opts: { untracedRoots?: UntracedRootRule } = {}): InMemoryTracing {
  const exporter = new InMemorySpanExporter();
  // Explicit, so an OTEL_TRACES_SAMPLER in the developer's shell cannot change test results.
  const sampler = new ParentBasedSampler({ root: new AlwaysOnSampler() });
  const provider = new NodeTracerProvider({
    // With untracedRoots, wrapped as startTracing wraps the configured sampler.
    sampler: opts.untracedRoots ? new UntracedHttpRootsSampler(sampler, opts.untracedRoots) : sampler,
    spanProcessors: [new SimpleSpanProcessor(exporter)],
  });
  const unregister = registerTracingGlobals(provider);
  return {
    exporter,
    spans: () => exporter.getFinishedSpans(),
    spanNamed(name) {
      const matches = exporter.getFinishedSpans().filter((s) => s.name === name);
      if (matches.length !== 1) {
        const names = exporter.getFinishedSpans().map((s) => s.name);
        throw new Error(`expected one span named "${name}", found ${matches.length} (spans: ${JSON.stringify(names)})`);
      }
      return matches[0] as ReadableSpan;
    },
    reset: () => exporter.reset(),
    async shutdown() {
      try {
        await provider.shutdown();
      } finally {
        unregister();
      }
    },
  };
}
