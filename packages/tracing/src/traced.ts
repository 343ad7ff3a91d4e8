import { SpanKind, trace, type Attributes, type Span } from "@opentelemetry/api";
import { ATTR_CODE_FUNCTION_NAME, ATTR_FUNCTION_ARGUMENTS, ATTR_FUNCTION_RESULT } from "./attributes.js";
import { activeContentCaptureMode, redactSecrets } from "./content.js";
import { recordError, wasCancelled } from "./errors.js";

const tracer = () => trace.getTracer("@tracelane/tracing/traced");

/** Captured arguments and results are cut here: a span attribute is not a payload store. */
const MAX_CAPTURED_CHARS = 8_192;

export interface TracedOptions {
  /** Span name; default the function's name (a method: `Class.method`). */
  name?: string;
  kind?: SpanKind;
  attributes?: Attributes;
  /**
   * Record the arguments (`tracelane.function.arguments`) and the result (`tracelane.function.result`) as JSON.
   * Only ever when content capture allows it (TRACELANE_CAPTURE_CONTENT=full, or `redacted` with secrets masked);
   * `false` keeps them off even then (say, for arguments holding credentials).
   */
  captureArguments?: boolean;
  captureResult?: boolean;
}

type AnyFunction = (this: any, ...args: any[]) => any;

function captured(value: unknown): string | undefined {
  const mode = activeContentCaptureMode();
  if (mode === "none") return undefined;
  let text: string;
  try {
    text = JSON.stringify(value, (_k, v: unknown) => (typeof v === "bigint" ? v.toString() : v)) ?? "undefined";
  } catch {
    text = "[unserialisable]";
  }
  if (mode === "redacted") text = redactSecrets(text);
  return text.length > MAX_CAPTURED_CHARS ? `${text.slice(0, MAX_CAPTURED_CHARS)}…` : text;
}

const isThenable = (v: unknown): v is PromiseLike<unknown> =>
  (typeof v === "object" || typeof v === "function") && v !== null && typeof (v as { then?: unknown }).then === "function";

/** Run `fn` inside an active span named `name`; sync results end it now, promises when they settle. */
function runTraced<T>(name: string, opts: TracedOptions, self: unknown, args: unknown[], fn: (...a: unknown[]) => T): T {
  return tracer().startActiveSpan(name, { kind: opts.kind ?? SpanKind.INTERNAL, attributes: opts.attributes ?? {} }, (span: Span) => {
    span.setAttribute(ATTR_CODE_FUNCTION_NAME, name);
    if (opts.captureArguments !== false && span.isRecording()) {
      const text = captured(args);
      if (text !== undefined) span.setAttribute(ATTR_FUNCTION_ARGUMENTS, text);
    }
    const succeed = (value: unknown) => {
      if (opts.captureResult !== false && span.isRecording() && !wasCancelled(span)) {
        const text = captured(value);
        if (text !== undefined) span.setAttribute(ATTR_FUNCTION_RESULT, text);
      }
      span.end();
    };
    const fail = (err: unknown) => {
      recordError(span, err);
      span.end();
    };
    let result: T;
    try {
      result = fn.apply(self, args);
    } catch (err) {
      fail(err);
      throw err;
    }
    if (!isThenable(result)) {
      succeed(result);
      return result;
    }
    // Hand back the caller's own promise (identity and subclass kept); settle the span beside it.
    result.then(succeed, fail);
    return result;
  });
}

/**
 * Trace any function: `traced(fn)` / `traced(fn, { name })` returns a wrapper that runs `fn` in a child span of
 * whatever span is active when it is called (so concurrent calls under `Promise.all` each get the right parent),
 * records a thrown error or rejection with `error.type`, and records arguments and results only when content
 * capture allows. `@traced()` / `@traced({ name })` is the same as a TypeScript 5 (standard) method decorator.
 */
export function traced<F extends AnyFunction>(fn: F, options?: TracedOptions | string): F;
export function traced(
  options?: TracedOptions | string,
): <F extends AnyFunction>(method: F, context: ClassMethodDecoratorContext<unknown, F>) => F;
export function traced(fnOrOptions?: AnyFunction | TracedOptions | string, maybeOptions?: TracedOptions | string) {
  const optionsOf = (o: TracedOptions | string | undefined): TracedOptions => (typeof o === "string" ? { name: o } : (o ?? {}));
  if (typeof fnOrOptions === "function") {
    const fn = fnOrOptions;
    const opts = optionsOf(maybeOptions);
    const name = opts.name ?? (fn.name || "anonymous");
    const wrapper = function (this: unknown, ...args: unknown[]) {
      return runTraced(name, opts, this, args, fn as (...a: unknown[]) => unknown);
    };
    Object.defineProperty(wrapper, "name", { value: fn.name });
    return wrapper;
  }
  const opts = optionsOf(fnOrOptions);
  return <F extends AnyFunction>(method: F, context: ClassMethodDecoratorContext<unknown, F>): F => {
    const methodName = String(context.name);
    return function (this: unknown, ...args: unknown[]) {
      const owner = context.static ? (this as { name?: string }).name : (this as { constructor?: { name?: string } })?.constructor?.name;
      const name = opts.name ?? (owner ? `${owner}.${methodName}` : methodName);
      return runTraced(name, opts, this, args, method as (...a: unknown[]) => unknown);
    } as unknown as F;
  };
}
