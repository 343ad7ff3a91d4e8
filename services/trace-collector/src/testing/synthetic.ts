import { randomBytes } from "node:crypto";
import type { SpanKindName, SpanRecord, SpanStatusName } from "@tracelane/trace-store";
import { ATTR_RESEARCH_ID, ATTR_STAGE } from "@tracelane/pipeline";
import {
  ATTR_ERROR_TYPE,
  ATTR_GEN_AI_OPERATION_NAME,
  ATTR_GEN_AI_PROVIDER_NAME,
  ATTR_GEN_AI_REQUEST_MODEL,
  ATTR_GEN_AI_RESPONSE_MODEL,
  ATTR_GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS,
  ATTR_GEN_AI_USAGE_INPUT_TOKENS,
  ATTR_GEN_AI_USAGE_OUTPUT_TOKENS,
  ATTR_HTTP_REQUEST_METHOD,
  ATTR_HTTP_REQUEST_RESEND_COUNT,
  ATTR_HTTP_RESPONSE_STATUS_CODE,
  ATTR_HTTP_ROUTE,
  ATTR_JOB_ATTEMPT,
  ATTR_MESSAGING_DESTINATION_NAME,
  ATTR_MESSAGING_MESSAGE_ID,
  ATTR_MESSAGING_OPERATION_TYPE,
  ATTR_QUEUE_WAIT_MS,
  ATTR_MESSAGING_SYSTEM,
} from "@tracelane/tracing/attributes";

/**
 * Synthetic pipeline traces in the exact OTLP/JSON shape the SDK's JsonTraceSerializer writes
 * (hex ids, unix-nano strings, AnyValue attributes, kind = SpanKind + 1), for tests and the
 * collector benchmark. Not used at runtime.
 */

export type SimpleAttr = string | number | boolean | string[];

/** The identity and timing a stored span will have; status, attributes and events optional and simpler. */
export interface SyntheticSpan extends Pick<
  SpanRecord,
  "traceId" | "spanId" | "parentSpanId" | "name" | "kind" | "service" | "startMs" | "endMs" | "statusMessage"
> {
  status?: SpanStatusName;
  attributes?: Record<string, SimpleAttr>;
  events?: { name: string; timeMs: number; attributes?: Record<string, SimpleAttr> }[];
}

export const randomTraceId = () => randomBytes(16).toString("hex");
export const randomSpanId = () => randomBytes(8).toString("hex");

export interface StageSpec {
  stage: string;
  model: string;
  provider?: string;
  inputTokens: number;
  outputTokens: number;
  cachedInputTokens?: number;
  latencyMs: number;
  queueWaitMs?: number;
  /** BullMQ attempts for this stage; every attempt but the last fails (default 1). */
  attempts?: number;
  /** The last attempt fails too, with this error.type. */
  error?: string;
  /** HTTP resends inside the model call (each earlier HTTP attempt answered 429). */
  resends?: number;
}

export interface PipelineSpec {
  traceId?: string;
  startMs?: number;
  researchId?: string;
  stages?: StageSpec[];
}

export const DEFAULT_STAGES: StageSpec[] = [
  { stage: "analysis", model: "gpt-4.1", provider: "openai", inputTokens: 1_000, outputTokens: 500, latencyMs: 800 },
  { stage: "factcheck", model: "gpt-4.1-mini", provider: "openai", inputTokens: 1_500, outputTokens: 300, latencyMs: 500 },
  { stage: "synthesis", model: "gemini-2.5-flash", provider: "gcp.gemini", inputTokens: 2_000, outputTokens: 800, latencyMs: 900 },
];

/**
 * One research pipeline as our services trace it: api SERVER root `POST /v1/research`, then per
 * stage PRODUCER `publish research-<stage>`, CONSUMER `process research-<stage>` (one per
 * attempt) and CLIENT `chat <model>` (with HTTP `POST` attempt spans when resends > 0).
 * Three plain stages give 10 spans.
 */
export function pipelineTrace(spec: PipelineSpec = {}): SyntheticSpan[] {
  const traceId = spec.traceId ?? randomTraceId();
  const researchId = spec.researchId ?? `r-${traceId.slice(0, 8)}`;
  let t = spec.startMs ?? Date.now() - 60_000;
  const spans: SyntheticSpan[] = [];
  const root: SyntheticSpan = {
    traceId,
    spanId: randomSpanId(),
    name: "POST /v1/research",
    kind: "server",
    service: "api",
    startMs: t,
    endMs: t + 6,
    status: "unset",
    attributes: {
      [ATTR_HTTP_REQUEST_METHOD]: "POST",
      [ATTR_HTTP_ROUTE]: "/v1/research",
      [ATTR_HTTP_RESPONSE_STATUS_CODE]: 202,
      [ATTR_RESEARCH_ID]: researchId,
    },
  };
  spans.push(root);
  let publisher = root;
  t += 2;
  for (const st of spec.stages ?? DEFAULT_STAGES) {
    const queue = `research-${st.stage}`;
    const jobId = `${researchId}-${st.stage}`;
    const publish: SyntheticSpan = {
      traceId,
      spanId: randomSpanId(),
      parentSpanId: publisher.spanId,
      name: `publish ${queue}`,
      kind: "producer",
      service: publisher.service,
      startMs: t,
      endMs: t + 1,
      attributes: {
        [ATTR_MESSAGING_SYSTEM]: "bullmq",
        [ATTR_MESSAGING_OPERATION_TYPE]: "send",
        [ATTR_MESSAGING_DESTINATION_NAME]: queue,
        [ATTR_MESSAGING_MESSAGE_ID]: jobId,
      },
    };
    spans.push(publish);
    t = publish.endMs;
    const attempts = Math.max(1, st.attempts ?? 1);
    let lastConsumer: SyntheticSpan | undefined;
    for (let attempt = 1; attempt <= attempts; attempt++) {
      const fails = attempt < attempts || st.error !== undefined;
      const errorType = st.error ?? "RateLimitError";
      const wait = attempt === 1 ? (st.queueWaitMs ?? 20) : 1_000;
      const service = `${st.stage}-worker`;
      const consumerStart = t + wait;
      const consumer: SyntheticSpan = {
        traceId,
        spanId: randomSpanId(),
        parentSpanId: publish.spanId,
        name: `process ${queue}`,
        kind: "consumer",
        service,
        startMs: consumerStart,
        endMs: 0,
        status: fails ? "error" : "ok",
        attributes: {
          [ATTR_MESSAGING_SYSTEM]: "bullmq",
          [ATTR_MESSAGING_OPERATION_TYPE]: "process",
          [ATTR_MESSAGING_DESTINATION_NAME]: queue,
          [ATTR_MESSAGING_MESSAGE_ID]: jobId,
          [ATTR_JOB_ATTEMPT]: attempt,
          [ATTR_QUEUE_WAIT_MS]: wait,
          ...(fails ? { [ATTR_ERROR_TYPE]: errorType } : {}),
        },
      };
      const chatStart = consumerStart + 1;
      const chat: SyntheticSpan = {
        traceId,
        spanId: randomSpanId(),
        parentSpanId: consumer.spanId,
        name: `chat ${st.model}`,
        kind: "client",
        service,
        startMs: chatStart,
        endMs: chatStart + st.latencyMs,
        status: fails ? "error" : "ok",
        ...(fails ? { statusMessage: `${errorType} from provider` } : {}),
        attributes: {
          [ATTR_GEN_AI_OPERATION_NAME]: "chat",
          [ATTR_GEN_AI_PROVIDER_NAME]: st.provider ?? "openai",
          [ATTR_GEN_AI_REQUEST_MODEL]: st.model,
          [ATTR_STAGE]: st.stage,
          [ATTR_RESEARCH_ID]: researchId,
          ...(fails
            ? { [ATTR_ERROR_TYPE]: errorType }
            : {
                [ATTR_GEN_AI_RESPONSE_MODEL]: st.model,
                [ATTR_GEN_AI_USAGE_INPUT_TOKENS]: st.inputTokens,
                [ATTR_GEN_AI_USAGE_OUTPUT_TOKENS]: st.outputTokens,
                ...(st.cachedInputTokens ? { [ATTR_GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS]: st.cachedInputTokens } : {}),
              }),
        },
        ...(fails
          ? {
              events: [
                {
                  name: "exception",
                  timeMs: chatStart + st.latencyMs,
                  attributes: { "exception.type": errorType, "exception.message": `${errorType} from provider` },
                },
              ],
            }
          : {}),
      };
      spans.push(consumer, chat);
      const resends = st.resends ?? 0;
      if (resends > 0) {
        const slice = st.latencyMs / (resends + 1);
        for (let r = 0; r <= resends; r++) {
          const last = r === resends;
          spans.push({
            traceId,
            spanId: randomSpanId(),
            parentSpanId: chat.spanId,
            name: "POST",
            kind: "client",
            service,
            startMs: chatStart + r * slice,
            endMs: chatStart + (r + 1) * slice,
            status: last ? "unset" : "error",
            attributes: {
              [ATTR_HTTP_REQUEST_METHOD]: "POST",
              [ATTR_HTTP_RESPONSE_STATUS_CODE]: last ? 200 : 429,
              [ATTR_HTTP_REQUEST_RESEND_COUNT]: r,
              ...(last ? {} : { [ATTR_ERROR_TYPE]: "429" }),
            },
          });
        }
      }
      consumer.endMs = chat.endMs + 2;
      t = consumer.endMs;
      lastConsumer = consumer;
      if (fails && attempt === attempts) return spans; // the pipeline stops at a failed stage
    }
    publisher = lastConsumer!;
  }
  return spans;
}

const KIND_NUMBER: Record<SpanKindName, number> = { unspecified: 0, internal: 1, server: 2, client: 3, producer: 4, consumer: 5 };
const STATUS_CODE: Record<SpanStatusName, number> = { unset: 0, ok: 1, error: 2 };

function anyValue(v: SimpleAttr): Record<string, unknown> {
  if (typeof v === "string") return { stringValue: v };
  if (typeof v === "boolean") return { boolValue: v };
  if (typeof v === "number") return Number.isInteger(v) ? { intValue: v } : { doubleValue: v };
  return { arrayValue: { values: v.map((x) => ({ stringValue: x })) } };
}

const keyValues = (attrs: Record<string, SimpleAttr> = {}) =>
  Object.entries(attrs).map(([key, value]) => ({ key, value: anyValue(value) }));

/** Epoch ms to a unix-nano decimal string, exact to the microsecond. */
export function msToNanos(ms: number): string {
  const whole = Math.floor(ms);
  const frac = Math.round((ms - whole) * 1e6);
  return (BigInt(whole) * 1_000_000n + BigInt(frac)).toString();
}

function otlpSpan(s: SyntheticSpan) {
  return {
    traceId: s.traceId,
    spanId: s.spanId,
    ...(s.parentSpanId ? { parentSpanId: s.parentSpanId } : {}),
    name: s.name,
    kind: KIND_NUMBER[s.kind],
    startTimeUnixNano: msToNanos(s.startMs),
    endTimeUnixNano: msToNanos(s.endMs),
    attributes: keyValues(s.attributes),
    droppedAttributesCount: 0,
    events: (s.events ?? []).map((e) => ({
      attributes: keyValues(e.attributes),
      name: e.name,
      timeUnixNano: msToNanos(e.timeMs),
      droppedAttributesCount: 0,
    })),
    droppedEventsCount: 0,
    status: { code: STATUS_CODE[s.status ?? "unset"], ...(s.statusMessage ? { message: s.statusMessage } : {}) },
    links: [],
    droppedLinksCount: 0,
    flags: 257,
  };
}

/** An OTLP/JSON ExportTraceServiceRequest (one resourceSpans per service). */
export function toOtlpRequest(spans: readonly SyntheticSpan[]) {
  const byService = new Map<string, SyntheticSpan[]>();
  for (const s of spans) {
    const list = byService.get(s.service);
    if (list) list.push(s);
    else byService.set(s.service, [s]);
  }
  return {
    resourceSpans: [...byService.entries()].map(([service, list]) => ({
      resource: { attributes: keyValues({ "service.name": service }), droppedAttributesCount: 0 },
      scopeSpans: [{ scope: { name: "@tracelane/synthetic", version: "0.1.0" }, spans: list.map(otlpSpan) }],
    })),
  };
}

/** The `otlp` field of a span stream entry. */
export const toOtlpJson = (spans: readonly SyntheticSpan[]) => JSON.stringify(toOtlpRequest(spans));

/**
 * Span stream entries the way services export them: each service batches its own spans
 * (up to spansPerEntry per entry), so one trace arrives spread over several entries.
 */
export function toStreamEntries(traces: readonly SyntheticSpan[][], spansPerEntry = 64): string[] {
  const buffers = new Map<string, SyntheticSpan[]>();
  const out: string[] = [];
  for (const trace of traces) {
    for (const s of trace) {
      const buf = buffers.get(s.service) ?? buffers.set(s.service, []).get(s.service)!;
      buf.push(s);
      if (buf.length >= spansPerEntry) {
        out.push(toOtlpJson(buf));
        buffers.set(s.service, []);
      }
    }
  }
  for (const buf of buffers.values()) if (buf.length > 0) out.push(toOtlpJson(buf));
  return out;
}
