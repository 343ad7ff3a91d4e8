import {
  isSpanContextValid,
  trace,
  TraceFlags,
  type Context,
  type TextMapGetter,
  type TextMapPropagator,
  type TextMapSetter,
  type TraceState,
} from "@opentelemetry/api";

/**
 * W3C Trace Context (Level 2) at the suite's strict level 2, where OpenTelemetry JS's own propagator falls short:
 * - an invalid `tracestate` (a bad key or value, more than 32 members) is dropped whole, as the spec says — OTel
 *   keeps its valid members;
 * - the Level 2 `random` trace flag (0x02) survives: the SDK rebuilds a child's flags from its sampling decision
 *   (sampled or not) and drops it, so inject puts it back for traces that carry it (see `randomTraces`).
 * Everything else follows the spec's processing model: only version 00's exact shape (later versions: the
 * first four fields, then `-` or the end), lower-case hex, no all-zero ids, version ff refused.
 */
export const TRACEPARENT = "traceparent";
export const TRACESTATE = "tracestate";

const RANDOM_FLAG = 0x02;
const OWS = /^[ \t]+|[ \t]+$/g;
const TRACEPARENT_V00 = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;
const TRACEPARENT_FUTURE = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/;
const KEY = /^[a-z0-9][a-z0-9_\-*/@]{0,255}$/;
const VALUE = /^[\x20-\x2b\x2d-\x3c\x3e-\x7e]{0,255}[\x21-\x2b\x2d-\x3c\x3e-\x7e]$/;
const MAX_MEMBERS = 32;

export interface ParsedTraceparent {
  traceId: string;
  spanId: string;
  traceFlags: number;
}

/** A traceparent value, or undefined when the spec says to ignore it. */
export function parseTraceparent(raw: string | undefined): ParsedTraceparent | undefined {
  if (raw === undefined) return undefined;
  const value = raw.replace(OWS, "");
  const m = value.startsWith("00-") ? TRACEPARENT_V00.exec(value) : TRACEPARENT_FUTURE.exec(value);
  if (!m) return undefined;
  const [version, traceId, spanId, flags] = m.length === 4 ? ["00", m[1]!, m[2]!, m[3]!] : [m[1]!, m[2]!, m[3]!, m[4]!];
  if (version === "ff" || /^0+$/.test(traceId) || /^0+$/.test(spanId)) return undefined;
  return { traceId, spanId, traceFlags: parseInt(flags, 16) };
}

/** An immutable tracestate list in order (left-most newest), implementing the OpenTelemetry API's TraceState. */
class StrictTraceState implements TraceState {
  constructor(private readonly members: ReadonlyArray<readonly [string, string]>) {}

  get(key: string): string | undefined {
    return this.members.find(([k]) => k === key)?.[1];
  }

  set(key: string, value: string): TraceState {
    if (!KEY.test(key) || !VALUE.test(value)) return this;
    return new StrictTraceState([[key, value] as const, ...this.members.filter(([k]) => k !== key)].slice(0, MAX_MEMBERS));
  }

  unset(key: string): TraceState {
    return new StrictTraceState(this.members.filter(([k]) => k !== key));
  }

  serialize(): string {
    return this.members.map(([k, v]) => `${k}=${v}`).join(",");
  }
}

/**
 * A tracestate value (several headers joined with `,`), or undefined to drop it: empty members are allowed,
 * any invalid member or more than 32 members invalidates the whole header. A duplicated key keeps its first
 * (left-most, most recent) position.
 */
export function parseTracestate(raw: string | undefined): TraceState | undefined {
  if (raw === undefined) return undefined;
  const members: Array<readonly [string, string]> = [];
  const seen = new Set<string>();
  for (const part of raw.split(",")) {
    const member = part.replace(OWS, "");
    if (member === "") continue;
    const eq = member.indexOf("=");
    if (eq <= 0) return undefined;
    const key = member.slice(0, eq);
    const value = member.slice(eq + 1);
    if (!KEY.test(key) || !VALUE.test(value)) return undefined;
    if (seen.has(key)) continue;
    seen.add(key);
    members.push([key, value]);
    if (members.length > MAX_MEMBERS) return undefined;
  }
  return members.length ? new StrictTraceState(members) : undefined;
}

/**
 * Traces whose ids this process learnt from a remote parent, and whether that parent set the random flag.
 * A trace id not here was made by this process (OpenTelemetry's random ids), so it is random. Bounded: a
 * forgotten trace is treated as local, which only adds the flag for a long-lived trace's late spans.
 */
const randomTraces = new Map<string, boolean>();
const MAX_REMEMBERED = 10_000;

function remember(traceId: string, random: boolean): void {
  if (randomTraces.has(traceId)) randomTraces.delete(traceId);
  randomTraces.set(traceId, random);
  if (randomTraces.size > MAX_REMEMBERED) randomTraces.delete(randomTraces.keys().next().value!);
}

const headerValue = (value: string | string[] | undefined): string | undefined =>
  Array.isArray(value) ? (value.length ? value.join(",") : undefined) : value;

export class StrictW3CTraceContextPropagator implements TextMapPropagator {
  inject(context: Context, carrier: unknown, setter: TextMapSetter): void {
    const spanContext = trace.getSpanContext(context);
    if (!spanContext || !isSpanContextValid(spanContext)) return;
    let flags = spanContext.traceFlags & 0xff;
    const random = spanContext.isRemote ? (flags & RANDOM_FLAG) !== 0 : (randomTraces.get(spanContext.traceId) ?? true);
    flags = random ? flags | RANDOM_FLAG : flags & ~RANDOM_FLAG;
    setter.set(carrier, TRACEPARENT, `00-${spanContext.traceId}-${spanContext.spanId}-${flags.toString(16).padStart(2, "0")}`);
    const state = spanContext.traceState?.serialize();
    if (state) setter.set(carrier, TRACESTATE, state);
  }

  extract(context: Context, carrier: unknown, getter: TextMapGetter): Context {
    const rawParent = getter.get(carrier, TRACEPARENT);
    // Two traceparent headers are one invalid value, not a choice.
    if (Array.isArray(rawParent) && rawParent.length > 1) return context;
    const parent = parseTraceparent(headerValue(rawParent));
    if (!parent) return context;
    remember(parent.traceId, (parent.traceFlags & RANDOM_FLAG) !== 0);
    const traceState = parseTracestate(headerValue(getter.get(carrier, TRACESTATE)));
    return trace.setSpanContext(context, {
      traceId: parent.traceId,
      spanId: parent.spanId,
      traceFlags: parent.traceFlags & (TraceFlags.SAMPLED | RANDOM_FLAG),
      isRemote: true,
      ...(traceState ? { traceState } : {}),
    });
  }

  fields(): string[] {
    return [TRACEPARENT, TRACESTATE];
  }
}
