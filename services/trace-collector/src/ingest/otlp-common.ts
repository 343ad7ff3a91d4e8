import { roundMs } from "@tracelane/pricing";
import type {
  AttributeValue,
  Attributes,
  SpanClamped,
  SpanEventRecord,
  SpanKindName,
  SpanLinkRecord,
  SpanRecord,
  SpanStatusName,
} from "@tracelane/trace-store";
import {
  ATTR_GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS,
  ATTR_USAGE_COST_USD,
  ATTR_GEN_AI_USAGE_INPUT_TOKENS,
  ATTR_GEN_AI_USAGE_OUTPUT_TOKENS,
  withCurrentNames,
} from "@tracelane/tracing/attributes";

/** The request could not be read as an ExportTraceServiceRequest at all (answer 400). */
export class OtlpDecodeError extends Error {
  override readonly name = "OtlpDecodeError";
}

export interface RejectedSpan {
  path: string;
  reason: string;
}

export interface DecodedSpans {
  spans: SpanRecord[];
  /** Spans skipped because a required field was missing or malformed (OTLP partial success). */
  rejected: RejectedSpan[];
}

/**
 * Per-span limits. What a span carries beyond them is cut, counted on the span (`clamped`), in the
 * collector's stats and in tracelane_collector_spans_total{outcome="clamped"}: never stored as sent.
 */
export const SPAN_LIMITS = {
  /** One string value (attribute, event or link attribute), in characters; longer ones end in "…". */
  stringChars: 4096,
  stackChars: 2048,
  /** Every string value of one span together (its name, attributes, events, links): 64 KiB of characters. */
  spanValueChars: 64 * 1024,
  /** Like the SDK's default span limits (OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT is 128). */
  attributes: 128,
  keyChars: 256,
  events: 32,
  attributesPerEvent: 32,
  links: 32,
  attributesPerLink: 32,
  /** Elements of one array value. */
  arrayValues: 128,
} as const;
const L = SPAN_LIMITS;

/** What the limits cut from the span being decoded, and what is left of its value budget. */
interface Cut extends SpanClamped {
  budget: number;
}
const newCut = (): Cut => ({ budget: L.spanValueChars, truncatedValues: 0, droppedAttributes: 0, droppedEvents: 0, droppedLinks: 0 });
/** Per request: the SDK batches 512; anything far past that is a client bug or an attack. */
export const MAX_SPANS_PER_REQUEST = 10_000;

/**
 * Spans are stored for a day and listed by start time: one dated in 1970 or in 2100 would sit
 * first in every listing for its whole retention. Beyond these bounds a span is rejected.
 */
export const SPAN_MAX_AGE_MS = 7 * 24 * 3600 * 1000;
export const SPAN_MAX_CLOCK_SKEW_MS = 10 * 60 * 1000;

/**
 * Usage counts on a model call: whole, non-negative and below any real context window by a wide
 * margin. A span claiming 1e308 tokens would otherwise price at 1e308 USD and sit in the global
 * cost statistics for their retention.
 */
const TOKEN_ATTRIBUTES = [ATTR_GEN_AI_USAGE_INPUT_TOKENS, ATTR_GEN_AI_USAGE_OUTPUT_TOKENS, ATTR_GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS];
const MAX_TOKENS = 100_000_000;
/** A reported per-call cost in USD (tracelane.usage.cost_usd) above this is not a model call's. */
const MAX_CALL_COST_USD = 10_000;

const KINDS: SpanKindName[] = ["unspecified", "internal", "server", "client", "producer", "consumer"];
const KIND_NAMES: Record<string, SpanKindName> = {
  SPAN_KIND_UNSPECIFIED: "unspecified",
  SPAN_KIND_INTERNAL: "internal",
  SPAN_KIND_SERVER: "server",
  SPAN_KIND_CLIENT: "client",
  SPAN_KIND_PRODUCER: "producer",
  SPAN_KIND_CONSUMER: "consumer",
};
const STATUS_NAMES: Record<string, SpanStatusName> = {
  STATUS_CODE_UNSET: "unset",
  STATUS_CODE_OK: "ok",
  STATUS_CODE_ERROR: "error",
};

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);
const arr = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);

const HEX_RE = /^[0-9a-fA-F]+$/;

/**
 * Trace/span ids: lower-case hex. OTLP/JSON carries hex (the SDK's JsonTraceSerializer), protobuf
 * carries bytes (given here as Uint8Array or base64). An all-zero id is invalid per the spec.
 */
export function toHexId(value: unknown, bytes: 8 | 16): string | undefined {
  let hex: string | undefined;
  if (value instanceof Uint8Array) {
    if (value.length === bytes) hex = Buffer.from(value).toString("hex");
  } else if (typeof value === "string" && value !== "") {
    if (value.length === bytes * 2 && HEX_RE.test(value)) hex = value.toLowerCase();
    else {
      const buf = Buffer.from(value, "base64");
      if (buf.length === bytes) hex = buf.toString("hex");
    }
  }
  if (hex === undefined || /^0+$/.test(hex)) return undefined;
  return hex;
}

/** Unix nanoseconds (decimal string, number, Long-like or bigint) to epoch ms. */
export function nanosToMs(value: unknown): number | undefined {
  if (typeof value === "string") {
    if (!/^\d+$/.test(value)) return undefined;
    if (value.length <= 6) return Number(value) / 1e6;
    return Number(value.slice(0, -6)) + Number(value.slice(-6)) / 1e6;
  }
  if (typeof value === "number") return Number.isFinite(value) && value >= 0 ? value / 1e6 : undefined;
  if (typeof value === "bigint") return nanosToMs(value.toString());
  if (isObj(value) && typeof value.low === "number" && typeof value.high === "number") {
    const n = (BigInt(value.high >>> 0) << 32n) | BigInt(value.low >>> 0);
    return nanosToMs(n.toString());
  }
  return undefined;
}

/** `s` cut to `max` characters and what is left of the span's budget (counted when cut). */
function clip(s: string, max: number = L.stringChars, cut?: Cut): string {
  const limit = cut ? Math.min(max, Math.max(0, cut.budget)) : max;
  if (cut) cut.budget -= Math.min(s.length, limit);
  if (s.length <= limit) return s;
  if (cut) cut.truncatedValues++;
  return `${s.slice(0, limit)}…`;
}

/** OTLP AnyValue to a plain JSON value. */
export function anyValue(v: unknown, depth = 0, cut?: Cut): AttributeValue {
  if (!isObj(v) || depth > 8) return null;
  if ("stringValue" in v) return clip(String(v.stringValue ?? ""), L.stringChars, cut);
  if ("boolValue" in v) return Boolean(v.boolValue);
  if ("intValue" in v) {
    const n = Number(v.intValue as string | number);
    return Number.isFinite(n) ? n : String(v.intValue);
  }
  if ("doubleValue" in v) return Number(v.doubleValue);
  if ("arrayValue" in v) {
    const values = arr(isObj(v.arrayValue) ? v.arrayValue.values : undefined);
    if (values.length > L.arrayValues && cut) cut.truncatedValues++;
    return values.slice(0, L.arrayValues).map((x) => anyValue(x, depth + 1, cut));
  }
  if ("kvlistValue" in v) return attributes(isObj(v.kvlistValue) ? v.kvlistValue.values : undefined, depth + 1, cut);
  if ("bytesValue" in v) {
    const b = v.bytesValue;
    return clip(b instanceof Uint8Array ? Buffer.from(b).toString("base64") : String(b ?? ""), L.stringChars, cut);
  }
  return null;
}

/**
 * OTLP KeyValues to attributes, at most `max`; with `cut`, every value counts against the span's
 * budget, and an attribute met once the budget is spent is dropped (and counted).
 */
export function attributes(list: unknown, depth = 0, cut?: Cut, max: number = L.attributes): Attributes {
  const out: Attributes = {};
  let kept = 0;
  for (const kv of arr(list)) {
    if (!isObj(kv)) continue;
    if (kept >= max || typeof kv.key !== "string" || kv.key.length > L.keyChars || (cut && cut.budget <= 0)) {
      if (cut) cut.droppedAttributes++;
      continue;
    }
    kept++;
    if (cut) cut.budget -= kv.key.length;
    out[kv.key] =
      kv.key === "exception.stacktrace"
        ? clip(String(anyValue(kv.value, depth, cut) ?? ""), L.stackChars, cut)
        : anyValue(kv.value, depth, cut);
  }
  return out;
}

function kindOf(v: unknown): SpanKindName {
  if (typeof v === "number") return KINDS[v] ?? "unspecified";
  if (typeof v === "string") return KIND_NAMES[v] ?? "unspecified";
  return "unspecified";
}

function statusOf(v: unknown): { status: SpanStatusName; message?: string } {
  if (!isObj(v)) return { status: "unset" };
  const code = v.code;
  const status: SpanStatusName =
    code === 2 ? "error" : code === 1 ? "ok" : typeof code === "string" ? (STATUS_NAMES[code] ?? "unset") : "unset";
  const message = typeof v.message === "string" && v.message !== "" ? clip(v.message, 1024) : undefined;
  return message ? { status, message } : { status };
}

function events(list: unknown, cut: Cut): SpanEventRecord[] | undefined {
  const out: SpanEventRecord[] = [];
  const all = arr(list);
  cut.droppedEvents += Math.max(0, all.length - L.events);
  for (const e of all.slice(0, L.events)) {
    if (!isObj(e)) continue;
    const timeMs = nanosToMs(e.timeUnixNano);
    const attrs = attributes(e.attributes, 0, cut, L.attributesPerEvent);
    out.push({
      name: typeof e.name === "string" ? clip(e.name, 512, cut) : "",
      timeMs: timeMs ?? 0,
      ...(Object.keys(attrs).length > 0 ? { attributes: attrs } : {}),
    });
  }
  return out.length > 0 ? out : undefined;
}

function links(list: unknown, cut: Cut): SpanLinkRecord[] | undefined {
  const out: SpanLinkRecord[] = [];
  const all = arr(list);
  cut.droppedLinks += Math.max(0, all.length - L.links);
  for (const l of all.slice(0, L.links)) {
    const traceId = isObj(l) ? toHexId(l.traceId, 16) : undefined;
    const spanId = isObj(l) ? toHexId(l.spanId, 8) : undefined;
    if (!traceId || !spanId) {
      cut.droppedLinks++;
      continue;
    }
    const attrs = attributes((l as Obj).attributes, 0, cut, L.attributesPerLink);
    out.push({ traceId, spanId, ...(Object.keys(attrs).length > 0 ? { attributes: attrs } : {}) });
  }
  return out.length > 0 ? out : undefined;
}

/**
 * ExportTraceServiceRequest (as a plain object: parsed OTLP/JSON, or protobuf decoded with
 * longs/bytes kept as strings/bytes) to SpanRecords. Structural errors throw OtlpDecodeError;
 * a malformed span is skipped and reported in `rejected`.
 */
export function requestToSpans(request: unknown, nowMs = Date.now()): DecodedSpans {
  if (!isObj(request)) throw new OtlpDecodeError("body must be an ExportTraceServiceRequest object with resourceSpans");
  if (request.resourceSpans !== undefined && !Array.isArray(request.resourceSpans)) {
    throw new OtlpDecodeError("resourceSpans must be an array");
  }
  const spans: SpanRecord[] = [];
  const rejected: RejectedSpan[] = [];
  let count = 0;
  for (const rs of arr(request.resourceSpans)) {
    for (const ss of isObj(rs) ? arr(rs.scopeSpans ?? rs.instrumentationLibrarySpans) : []) count += isObj(ss) ? arr(ss.spans).length : 0;
  }
  if (count > MAX_SPANS_PER_REQUEST) {
    throw new OtlpDecodeError(
      `at most ${MAX_SPANS_PER_REQUEST.toLocaleString("en-US")} spans per request (got ${count.toLocaleString("en-US")}); send smaller batches`,
    );
  }
  const window = { from: nowMs - SPAN_MAX_AGE_MS, to: nowMs + SPAN_MAX_CLOCK_SKEW_MS };
  arr(request.resourceSpans).forEach((rs, i) => {
    if (!isObj(rs)) throw new OtlpDecodeError(`resourceSpans[${i}] must be an object`);
    const resourceAttrs = attributes(isObj(rs.resource) ? rs.resource.attributes : undefined);
    const service = typeof resourceAttrs["service.name"] === "string" ? resourceAttrs["service.name"] : "unknown_service";
    // `instrumentationLibrarySpans` is the pre-1.0 name of scopeSpans.
    const scopes = arr(rs.scopeSpans ?? rs.instrumentationLibrarySpans);
    scopes.forEach((ss, j) => {
      if (!isObj(ss)) throw new OtlpDecodeError(`resourceSpans[${i}].scopeSpans[${j}] must be an object`);
      arr(ss.spans).forEach((s, k) => {
        const path = `resourceSpans[${i}].scopeSpans[${j}].spans[${k}]`;
        const result = spanRecord(s, service, window);
        if (typeof result === "string") rejected.push({ path, reason: result });
        else spans.push(result);
      });
    });
  });
  return { spans, rejected };
}

const iso = (ms: number) => new Date(Math.min(Math.max(ms, -8.64e15), 8.64e15)).toISOString();

function spanRecord(s: unknown, service: string, window: { from: number; to: number }): SpanRecord | string {
  if (!isObj(s)) return "span must be an object";
  const traceId = toHexId(s.traceId, 16);
  if (!traceId) return "traceId must be 16 non-zero bytes (32 hex characters)";
  const spanId = toHexId(s.spanId, 8);
  if (!spanId) return "spanId must be 8 non-zero bytes (16 hex characters)";
  const startMs = nanosToMs(s.startTimeUnixNano);
  if (startMs === undefined || startMs === 0) return "startTimeUnixNano must be unix nanoseconds";
  if (startMs < window.from || startMs > window.to) {
    return `startTimeUnixNano ${iso(startMs)} is outside what the collector accepts (${iso(window.from)} to ${iso(window.to)}): check the sender's clock`;
  }
  // An end past the window is clamped to it (a span cannot outlast what we accept as "now").
  const endMs = Math.min(nanosToMs(s.endTimeUnixNano) ?? startMs, window.to);
  const parent = s.parentSpanId === undefined || s.parentSpanId === "" ? undefined : toHexId(s.parentSpanId, 8);
  const { status, message } = statusOf(s.status);
  const cut = newCut();
  // Built field by field (no conditional spreads): this runs for every span at full ingest rate.
  const record: SpanRecord = {
    traceId,
    spanId,
    name: typeof s.name === "string" ? clip(s.name, 512, cut) : "",
    kind: kindOf(s.kind),
    service,
    startMs,
    endMs: Math.max(endMs, startMs),
    durationMs: roundMs(Math.max(0, endMs - startMs)),
    status,
    // Older senders' names for our attributes are read as the current ones (RENAMED_ATTRIBUTES).
    attributes: withCurrentNames(attributes(s.attributes, 0, cut)),
  };
  const badUsage = usageProblem(record.attributes);
  if (badUsage) return badUsage;
  if (parent) record.parentSpanId = parent;
  if (message) record.statusMessage = message;
  const evs = events(s.events, cut);
  if (evs) record.events = evs;
  const lks = links(s.links, cut);
  if (lks) record.links = lks;
  if (cut.truncatedValues + cut.droppedAttributes + cut.droppedEvents + cut.droppedLinks > 0) {
    record.clamped = {
      truncatedValues: cut.truncatedValues,
      droppedAttributes: cut.droppedAttributes,
      droppedEvents: cut.droppedEvents,
      droppedLinks: cut.droppedLinks,
    };
  }
  return record;
}

function usageProblem(a: Attributes): string | undefined {
  for (const key of TOKEN_ATTRIBUTES) {
    const v = a[key];
    if (v === undefined) continue;
    if (typeof v !== "number" || !Number.isInteger(v) || v < 0 || v > MAX_TOKENS) {
      return `${key} must be a whole number of tokens from 0 to ${MAX_TOKENS.toLocaleString("en-US")} (got ${JSON.stringify(v)})`;
    }
  }
  const cost = a[ATTR_USAGE_COST_USD];
  if (cost !== undefined && (typeof cost !== "number" || !Number.isFinite(cost) || cost < 0 || cost > MAX_CALL_COST_USD)) {
    return `${ATTR_USAGE_COST_USD} must be a cost in USD from 0 to ${MAX_CALL_COST_USD} (got ${JSON.stringify(cost)})`;
  }
  return undefined;
}
