import { getMetricsFromIterator, type PromHistogramData, type PromMetrics } from "prom2javascript";

/** Series of one metric whose labels include every label given (absent labels match anything). */
type LabelFilter = Record<string, string>;

const matches = (labels: Record<string, string>, filter: LabelFilter) => Object.entries(filter).every(([k, v]) => labels[k] === v);

export interface HistogramReading {
  count: number;
  sum: number;
  /** Cumulative count per `le` bound, as exposed ("+Inf" included). */
  buckets: Record<string, number>;
}

/** A /metrics body read by a Prometheus text-format parser, with sums over matching series. */
export interface Scrape {
  readonly families: PromMetrics;
  readonly text: string;
  /** The metric family's TYPE, or undefined when it is not exposed. */
  type(name: string): string | undefined;
  /** Label sets of a counter's or gauge's series. */
  series(name: string): Array<{ labels: Record<string, string>; value: number }>;
  /** Sum over the series of a counter or gauge that match (0 when none). */
  value(name: string, filter?: LabelFilter): number;
  /** A histogram's matching series added up (zeros when none). */
  histogram(name: string, filter?: LabelFilter): HistogramReading;
}

/** A sample whose value is NaN or -Inf (any case), which Prometheus accepts and prom2javascript's grammar does not. */
const NON_FINITE_SAMPLE = /^[^#].*\s(?:nan|-inf)$/i;

/**
 * Parse the Prometheus text exposition format (prom2javascript). Samples valued NaN or -Inf are left
 * out first: Prometheus reads them (prom-client writes `Nan` for an event-loop mean with no sample
 * yet), prom2javascript's value grammar does not, and no metric a test checks has such a value.
 */
export async function parseMetricsText(text: string): Promise<Scrape> {
  const lines = text.split("\n").filter((line) => !NON_FINITE_SAMPLE.test(line.trim()));
  const families = await getMetricsFromIterator(lines[Symbol.iterator]());
  const family = (name: string) => families[name];
  const plain = (name: string) => {
    const f = family(name);
    if (!f) return [];
    if (f.type === "histogram" || f.type === "summary") throw new Error(`${name} is a ${f.type}, not a counter or gauge`);
    return f.data as Array<{ labels: Record<string, string>; value: number }>;
  };
  return {
    families,
    text,
    type: (name) => family(name)?.type,
    series: plain,
    value: (name, filter = {}) => plain(name).reduce((sum, s) => (matches(s.labels, filter) ? sum + s.value : sum), 0),
    histogram(name, filter = {}) {
      const f = family(name);
      const out: HistogramReading = { count: 0, sum: 0, buckets: {} };
      if (!f) return out;
      if (f.type !== "histogram") throw new Error(`${name} is a ${f.type}, not a histogram`);
      for (const s of f.data as PromHistogramData[]) {
        if (!matches(s.labels, filter)) continue;
        out.count += s.count;
        out.sum += s.sum ?? 0;
        for (const [le, n] of Object.entries(s.buckets)) out.buckets[le] = (out.buckets[le] ?? 0) + n;
      }
      return out;
    },
  };
}

/** GET a service's /metrics and parse it; fails on a non-200 or a content type that is not the text format. */
export async function scrapeMetrics(url: string): Promise<Scrape> {
  const res = await fetch(url);
  const text = await res.text();
  if (res.status !== 200) throw new Error(`GET ${url} -> ${res.status}: ${text.slice(0, 500)}`);
  const type = res.headers.get("content-type") ?? "";
  if (!type.startsWith("text/plain") || !type.includes("version=0.0.4")) throw new Error(`GET ${url}: content-type ${type}`);
  return parseMetricsText(text);
}

/** The smallest `le` bound of `bounds` that holds `value` (Prometheus buckets are upper-inclusive), or "+Inf". */
export function bucketOf(value: number, bounds: readonly number[]): string {
  const le = bounds.find((b) => value <= b);
  return le === undefined ? "+Inf" : String(le);
}
