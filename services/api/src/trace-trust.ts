import type { IncomingMessage } from "node:http";
import type { ApiKeys } from "@tracelane/api-keys";
import type { TraceContextTrust } from "./env.js";

/**
 * TRUST_INCOMING_TRACE_CONTEXT as httpServerTracing's `trustContext`: whether a request's
 * traceparent is continued. `never`: nobody's; `always`: everyone's; `keyed` (default): a caller
 * with a valid API key — with no keys configured nobody is keyed, so nobody is trusted. An untrusted
 * request starts a trace of its own that links to the caller's context (so a stranger cannot add
 * spans and cost to someone else's trace, nor switch tracing off with a not-sampled flag).
 */
export function traceContextTrust(mode: TraceContextTrust, apiKeys: ApiKeys): (req: IncomingMessage) => boolean {
  switch (mode) {
    case "always":
      return () => true;
    case "never":
      return () => false;
    case "keyed":
      return (req) => {
        const header = req.headers.authorization;
        return apiKeys.enabled && apiKeys.authenticate(Array.isArray(header) ? header[0] : header).outcome === "ok";
      };
  }
}
