import type { IncomingMessage, ServerResponse } from "node:http";
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";
import { ATTR_PRICE_VERSION } from "@tracelane/tracing/attributes";
import { ATTR_EXPORT_DESTINATION, ATTR_METRIC_NAME, ATTR_SPAN_OUTCOME, METRICS, type Metric } from "./catalog.js";

export type Attributes<A extends string> = Partial<Record<A, string | number>>;
type Labels = Record<string, string | number>;

function labelsOf(m: Pick<Metric, "labelOf">, attrs: Attributes<string>): Labels {
  const labels: Labels = {};
  for (const key in attrs) {
    const value = attrs[key];
    const label = m.labelOf[key];
    if (value !== undefined && value !== "" && label !== undefined) labels[label] = value;
  }
  return labels;
}

/** A histogram of the catalog, observed with OpenTelemetry attribute names. */
export interface HistogramInstrument<A extends string> {
  observe(attrs: Attributes<A>, value: number): void;
  /** The series of one attribute set, its labels translated once (for hot paths that cache it). */
  bind(attrs: Attributes<A>): (value: number) => void;
}

export interface CounterInstrument<A extends string> {
  add(attrs: Attributes<A>, value?: number): void;
  bind(attrs: Attributes<A>): (value?: number) => void;
}

/** What a scrape-time read returns: one value per attribute set. */
export type Readings<A extends string> = Iterable<readonly [Attributes<A>, number]>;

/** Export counts of a service's tracing (TracingHandle.stats(), structurally). */
export interface TracingStatsLike {
  destinations: Partial<Record<string, { exportedSpans: number; droppedSpans: number; failedExports: number }>>;
}

export interface ServiceMetrics {
  readonly registry: Registry;
  histogram<A extends string>(m: Metric<A>): HistogramInstrument<A>;
  counter<A extends string>(m: Metric<A>): CounterInstrument<A>;
  /** A counter whose totals live elsewhere (stats objects), read at each scrape. */
  counterFrom<A extends string>(m: Metric<A>, read: () => Readings<A>): void;
  /** A gauge read at each scrape; a read that throws leaves it out of that scrape (counted in collectErrors, shown from the next scrape on). */
  gaugeFrom<A extends string>(m: Metric<A>, read: () => Readings<A> | Promise<Readings<A>>): void;
  /** GET /metrics for node:http and Express: the Prometheus text format. */
  handler(req: IncomingMessage, res: ServerResponse): void;
}

export interface ServiceMetricsOptions {
  /** The process's span export counts (exportedSpans, failedExports); omit where tracing is not started. */
  tracingStats?: () => TracingStatsLike;
  /** Node.js process metrics (CPU, memory, event loop lag, GC, handles): prom-client's defaults. Default true. */
  processMetrics?: boolean;
  /** The version of the price table in force (a PriceBook's), read at each scrape; omit where nothing is priced. */
  priceVersion?: () => string;
}

/**
 * One service's registry: Node.js process metrics, its tracing's export counts, and the instruments
 * it creates from the catalog. Each call builds its own registry (no global), so several services in
 * one test process do not share or collide.
 */
export function createServiceMetrics(opts: ServiceMetricsOptions = {}): ServiceMetrics {
  const registry = new Registry();
  if (opts.processMetrics ?? true) collectDefaultMetrics({ register: registry });

  const labelNames = (m: Pick<Metric, "labelNames">) => [...m.labelNames];
  const collectErrors = new Counter({
    name: METRICS.collectErrors.prometheus,
    help: METRICS.collectErrors.description,
    labelNames: labelNames(METRICS.collectErrors),
    registers: [registry],
  });

  const metrics: ServiceMetrics = {
    registry,
    histogram<A extends string>(m: Metric<A>) {
      const h = new Histogram({
        name: m.prometheus,
        help: m.description,
        labelNames: labelNames(m),
        buckets: [...(m.buckets ?? [])],
        registers: [registry],
      });
      return {
        observe: (attrs, value) => h.observe(labelsOf(m, attrs), value),
        bind(attrs) {
          const labels = labelsOf(m, attrs);
          return (value) => h.observe(labels, value);
        },
      };
    },
    counter<A extends string>(m: Metric<A>) {
      const c = new Counter({ name: m.prometheus, help: m.description, labelNames: labelNames(m), registers: [registry] });
      return {
        add: (attrs, value = 1) => c.inc(labelsOf(m, attrs), value),
        bind(attrs) {
          const labels = labelsOf(m, attrs);
          return (value = 1) => c.inc(labels, value);
        },
      };
    },
    counterFrom<A extends string>(m: Metric<A>, read: () => Readings<A>) {
      new Counter({
        name: m.prometheus,
        help: m.description,
        labelNames: labelNames(m),
        registers: [registry],
        collect() {
          // prom-client has no counter callback; the totals are monotonic where they are kept.
          this.reset();
          for (const [attrs, value] of read()) this.inc(labelsOf(m, attrs), value);
        },
      });
    },
    gaugeFrom<A extends string>(m: Metric<A>, read: () => Readings<A> | Promise<Readings<A>>) {
      new Gauge({
        name: m.prometheus,
        help: m.description,
        labelNames: labelNames(m),
        registers: [registry],
        async collect() {
          this.reset();
          try {
            for (const [attrs, value] of await read()) this.set(labelsOf(m, attrs), value);
          } catch {
            this.reset();
            collectErrors.inc({ [METRICS.collectErrors.labelOf[ATTR_METRIC_NAME]]: m.prometheus });
          }
        },
      });
    },
    handler(_req, res) {
      registry.metrics().then(
        (text) => {
          res.writeHead(200, { "content-type": registry.contentType });
          res.end(text);
        },
        (err: unknown) => {
          res.writeHead(500, { "content-type": "text/plain; charset=utf-8" });
          res.end(`collecting metrics failed: ${err instanceof Error ? err.message : String(err)}\n`);
        },
      );
    },
  };

  if (opts.tracingStats) {
    const stats = opts.tracingStats;
    metrics.counterFrom(METRICS.exportedSpans, function* () {
      for (const [destination, s] of Object.entries(stats().destinations)) {
        if (!s) continue;
        yield [{ [ATTR_EXPORT_DESTINATION]: destination, [ATTR_SPAN_OUTCOME]: "exported" }, s.exportedSpans];
        yield [{ [ATTR_EXPORT_DESTINATION]: destination, [ATTR_SPAN_OUTCOME]: "dropped" }, s.droppedSpans];
      }
    });
    metrics.counterFrom(METRICS.failedExports, function* () {
      for (const [destination, s] of Object.entries(stats().destinations)) {
        if (s) yield [{ [ATTR_EXPORT_DESTINATION]: destination }, s.failedExports];
      }
    });
  }
  if (opts.priceVersion) {
    const version = opts.priceVersion;
    metrics.gaugeFrom(METRICS.priceTable, () => [[{ [ATTR_PRICE_VERSION]: version() }, 1]]);
  }
  return metrics;
}
