import { context as otelContext, ROOT_CONTEXT, type Context } from "@opentelemetry/api";
import { StrictW3CTraceContextPropagator } from "./w3c-propagator.js";

/** W3C trace context as it travels in job data: plain, JSON-safe strings. */
export interface Carrier {
  traceparent?: string;
  tracestate?: string;
}

// Carriers always speak W3C Trace Context, whether or not an SDK registered a global propagator
// (OTEL_SDK_DISABLED=true must not cut a trace across a queue hop).
const w3c = new StrictW3CTraceContextPropagator();

/** Write the given (default: active) context into `carrier` and return it. */
// `C & Carrier`: a fresh `{}` argument infers C = {}, and the result must still expose traceparent.
export function injectContext<C extends Carrier>(carrier: C = {} as C, ctx: Context = otelContext.active()): C & Carrier {
  w3c.inject(ctx, carrier, {
    set: (c, key, value) => {
      (c as Record<string, string>)[key] = value;
    },
  });
  return carrier;
}

/** The context to run a consumer under: the remote parent from `carrier`, or a fresh root. */
export function extractContext(carrier: Carrier | undefined, base: Context = ROOT_CONTEXT): Context {
  if (!carrier) return base;
  return w3c.extract(base, carrier, {
    get: (c, key) => (c as Record<string, string | undefined>)[key],
    keys: (c) => Object.keys(c),
  });
}

/**
 * Carrier read from incoming HTTP headers (lower-cased by Node). Repeated headers are joined with "," (how Node
 * itself joins them): several tracestate headers are one list, two traceparent headers are one invalid value.
 */
export function carrierFromHeaders(headers: Record<string, string | string[] | undefined>): Carrier {
  const pick = (name: string) => {
    const v = headers[name];
    return Array.isArray(v) ? v.join(",") : v;
  };
  const carrier: Carrier = {};
  const traceparent = pick("traceparent");
  const tracestate = pick("tracestate");
  if (traceparent) carrier.traceparent = traceparent;
  if (tracestate) carrier.tracestate = tracestate;
  return carrier;
}
