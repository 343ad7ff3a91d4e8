import { context, propagation, trace, type TracerProvider } from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { CompositePropagator, W3CBaggagePropagator } from "@opentelemetry/core";
import { StrictW3CTraceContextPropagator } from "./w3c-propagator.js";

/**
 * Register a tracer provider, an AsyncLocalStorage context manager and the W3C
 * trace-context + baggage propagator with the OpenTelemetry API.
 *
 * The API keeps the first registration and silently ignores later ones (so does
 * NodeTracerProvider.register()); a second SDK in one process would then export
 * nothing. This fails loudly instead and returns the undo, which lets a test or
 * a restarted SDK register again after shutdown.
 */
export function registerTracingGlobals(provider: TracerProvider): () => void {
  if (!trace.setGlobalTracerProvider(provider)) {
    throw new Error(
      "a global tracer provider is already registered (tracing started twice?); shut the first one down before starting again",
    );
  }
  if (!context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable())) {
    trace.disable();
    throw new Error("a global context manager is already registered; shut the previous tracing down before starting again");
  }
  const propagator = new CompositePropagator({
    propagators: [new StrictW3CTraceContextPropagator(), new W3CBaggagePropagator()],
  });
  if (!propagation.setGlobalPropagator(propagator)) {
    trace.disable();
    context.disable();
    throw new Error("a global propagator is already registered; shut the previous tracing down before starting again");
  }
  return once(() => {
    trace.disable();
    context.disable();
    propagation.disable();
  });
}

/**
 * Only the context manager, for OTEL_SDK_DISABLED=true: with no SDK the API's
 * non-recording spans still carry an incoming trace context, but without a
 * context manager `context.active()` is always ROOT, so the next publish or
 * outgoing call inside a handler would start a fresh trace. Returns the undo
 * (a no-op when another context manager was there first).
 */
export function registerContextManagerOnly(): () => void {
  const registered = context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  return registered ? once(() => context.disable()) : () => undefined;
}

function once(fn: () => void): () => void {
  let done = false;
  return () => {
    if (done) return;
    done = true;
    fn();
  };
}
