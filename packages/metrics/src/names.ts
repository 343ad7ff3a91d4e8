/**
 * OpenTelemetry -> Prometheus names, as the OpenTelemetry "Prometheus and OpenMetrics Compatibility"
 * spec (OTLP metric points to Prometheus) and the Collector's translator (contrib
 * pkg/translator/prometheus, normalize_name.go) do it, so a query written against these metrics also
 * works against the same instruments exported through an OpenTelemetry SDK or Collector:
 *
 * - the name is split at every character that is not a letter or digit, and joined with `_`
 *   (`gen_ai.client.token.usage` -> `gen_ai_client_token_usage`);
 * - the unit becomes a suffix in words (`s` -> `_seconds`, `By` -> `_bytes`, `1/s` -> `_per_second`),
 *   unless the name already holds it; an annotation in braces (`{token}`, `{USD}`) is a count, no suffix;
 * - a counter (monotonic sum) ends in `_total`, a gauge in unit `1` in `_ratio`;
 * - an attribute becomes a label by replacing each invalid character with `_` (`gen_ai.request.model`
 *   -> `gen_ai_request_model`). Histograms get `_bucket`/`_sum`/`_count` from prom-client.
 */

export type MetricType = "counter" | "gauge" | "histogram";

/** UCUM units in words (the Collector's unitMap). */
const UNIT_WORDS: Readonly<Record<string, string>> = {
  d: "days",
  h: "hours",
  min: "minutes",
  s: "seconds",
  ms: "milliseconds",
  us: "microseconds",
  ns: "nanoseconds",
  By: "bytes",
  KiBy: "kibibytes",
  MiBy: "mebibytes",
  GiBy: "gibibytes",
  TiBy: "tibibytes",
  KBy: "kilobytes",
  MBy: "megabytes",
  GBy: "gigabytes",
  TBy: "terabytes",
  m: "meters",
  V: "volts",
  A: "amperes",
  J: "joules",
  W: "watts",
  g: "grams",
  Cel: "celsius",
  Hz: "hertz",
  "1": "",
  "%": "percent",
};

/** The unit after `/` (the Collector's perUnitMap): `1/s` is "per second". */
const PER_UNIT_WORDS: Readonly<Record<string, string>> = {
  s: "second",
  m: "minute",
  h: "hour",
  d: "day",
  w: "week",
  mo: "month",
  y: "year",
};

const tokensOf = (s: string) => s.split(/[^\p{L}\p{N}]+/u).filter((t) => t !== "");

function unitToken(unit: string | undefined, words: Readonly<Record<string, string>>): string | undefined {
  const u = unit?.trim();
  if (!u || /[{}]/.test(u)) return undefined;
  const word = tokensOf(words[u] ?? u).join("_");
  return word === "" ? undefined : word;
}

/** The Prometheus metric name of an OpenTelemetry instrument (histograms: the family name). */
export function prometheusName(name: string, unit: string, type: MetricType): string {
  let tokens = tokensOf(name);
  const [main, per] = unit.split("/", 2);
  const mainWord = unitToken(main, UNIT_WORDS);
  if (mainWord && !tokens.includes(mainWord)) tokens.push(mainWord);
  const perWord = unitToken(per, PER_UNIT_WORDS);
  if (perWord && !tokens.includes(perWord)) tokens.push("per", perWord);
  if (type === "counter") tokens = [...tokens.filter((t) => t !== "total"), "total"];
  if (type === "gauge" && unit === "1") tokens = [...tokens.filter((t) => t !== "ratio"), "ratio"];
  const out = tokens.join("_");
  return /^\d/.test(out) ? `_${out}` : out;
}

/** The Prometheus label name of an OpenTelemetry attribute. */
export function prometheusLabel(attribute: string): string {
  const out = attribute.replace(/[^A-Za-z0-9_]/g, "_").replace(/_{2,}/g, "_");
  return /^\d/.test(out) ? `key_${out}` : out;
}
