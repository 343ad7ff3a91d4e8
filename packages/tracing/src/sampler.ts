import { isSpanContextValid, SpanKind, trace, TraceFlags, type Attributes, type Context, type Link } from "@opentelemetry/api";
import {
  AlwaysOffSampler,
  AlwaysOnSampler,
  ParentBasedSampler,
  SamplingDecision,
  TraceIdRatioBasedSampler,
  type Sampler,
  type SamplingResult,
} from "@opentelemetry/sdk-trace-base";
import { ATTR_HTTP_REQUEST_METHOD, ATTR_URL_PATH } from "./attributes.js";
import type { SamplerName } from "./tracing-env.js";

/**
 * The sampler named by OTEL_TRACES_SAMPLER / OTEL_TRACES_SAMPLER_ARG. Built
 * here rather than by the SDK because the SDK only reads process.env, and
 * startTracing takes its env as an argument.
 */
export function samplerFromConfig(name: SamplerName, ratio: number): Sampler {
  switch (name) {
    case "always_on":
      return new AlwaysOnSampler();
    case "always_off":
      return new AlwaysOffSampler();
    case "traceidratio":
      return new TraceIdRatioBasedSampler(ratio);
    case "parentbased_always_on":
      return new ParentBasedSampler({ root: new AlwaysOnSampler() });
    case "parentbased_always_off":
      return new ParentBasedSampler({ root: new AlwaysOffSampler() });
    case "parentbased_traceidratio":
      return new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(ratio) });
  }
}

/** An incoming HTTP request as the SERVER span of httpServerTracing() starts: its method (upper case) and path. */
export interface HttpRequestInfo {
  method: string;
  path: string;
}

/** True for the requests that must not start a trace of their own. */
export type UntracedRootRule = (req: HttpRequestInfo) => boolean;

/**
 * Wraps the configured sampler: an incoming HTTP request that `untraced` names starts no trace of
 * its own (its SERVER span, and so everything under it, is not recorded) — unless it arrives with a
 * sampled `traceparent`, which is continued as the delegate decides. Logs of such a request still
 * carry its (unsampled) trace and span ids. Below a span this process chose not to record, nothing is
 * recorded either, whatever the delegate (an always_on sampler would otherwise record orphans).
 * Like the rule-based routing sampler of opentelemetry-java-contrib, with the rule as a function.
 */
export class UntracedHttpRootsSampler implements Sampler {
  constructor(
    private readonly delegate: Sampler,
    private readonly untraced: UntracedRootRule,
  ) {}

  shouldSample(ctx: Context, traceId: string, name: string, kind: SpanKind, attributes: Attributes, links: Link[]): SamplingResult {
    const parent = trace.getSpanContext(ctx);
    if (parent && isSpanContextValid(parent)) {
      const sampled = (parent.traceFlags & TraceFlags.SAMPLED) === TraceFlags.SAMPLED;
      if (!sampled && !parent.isRemote) return { decision: SamplingDecision.NOT_RECORD };
      return this.delegate.shouldSample(ctx, traceId, name, kind, attributes, links);
    }
    const method = attributes[ATTR_HTTP_REQUEST_METHOD];
    const path = attributes[ATTR_URL_PATH];
    if (kind === SpanKind.SERVER && typeof method === "string" && typeof path === "string" && this.untraced({ method, path })) {
      return { decision: SamplingDecision.NOT_RECORD };
    }
    return this.delegate.shouldSample(ctx, traceId, name, kind, attributes, links);
  }

  toString(): string {
    return `UntracedHttpRootsSampler{${this.delegate.toString()}}`;
  }
}
