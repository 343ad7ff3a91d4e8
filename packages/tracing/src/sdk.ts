import { randomUUID } from "node:crypto";
import { context, ROOT_CONTEXT } from "@opentelemetry/api";
import { ExportResultCode, type ExportResult } from "@opentelemetry/core";
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-grpc";
import { defaultResource, resourceFromAttributes } from "@opentelemetry/resources";
import type { ReadableSpan, SpanExporter } from "@opentelemetry/sdk-trace-base";
import { NodeTracerProvider } from "@opentelemetry/sdk-trace-node";
import { ATTR_SERVICE_NAME, ATTR_SERVICE_VERSION } from "@opentelemetry/semantic-conventions";
import { bootFailureLine, EnvError } from "@tracelane/runtime";
import { configureContentCapture } from "./content.js";
import { CountedBatchSpanProcessor, type ExportStats } from "./counted-batch-processor.js";
import { registerContextManagerOnly, registerTracingGlobals } from "./globals.js";
import { createLogger } from "./logger.js";
import { RedisStreamSpanExporter } from "./redis-stream-exporter.js";
import { samplerFromConfig, UntracedHttpRootsSampler, type UntracedRootRule } from "./sampler.js";
import { resolveTracingConfig, type TracingConfig } from "./tracing-env.js";

export interface StartTracingOptions {
  /** service.name; OTEL_SERVICE_NAME overrides it. */
  serviceName: string;
  serviceVersion?: string;
  /** Redis for the span stream to the trace-collector; falls back to REDIS_URL (a cluster: REDIS_CLUSTER_NODES). */
  redisUrl?: string;
  /** Environment to configure from; default process.env. */
  env?: NodeJS.ProcessEnv;
  /**
   * Incoming HTTP requests that start no trace of their own (a sampled traceparent is still
   * continued); see UntracedHttpRootsSampler. Default: every request may start one.
   */
  untracedRoots?: UntracedRootRule;
}

export type DestinationName = "otlp" | "redis";

export interface TracingStats extends ExportStats {
  /** The same counts per destination; the totals above are their sums. */
  destinations: Partial<Record<DestinationName, ExportStats>>;
}

export interface TracingHandle {
  /** false under OTEL_SDK_DISABLED=true: no provider, nothing exported. */
  enabled: boolean;
  /** Export everything ended so far to every destination; failures show in stats(), not as a rejection. */
  forceFlush(): Promise<void>;
  /** Flush, close exporters and release the global registration; safe to call twice. */
  shutdown(): Promise<void>;
  stats(): TracingStats;
}

const ZERO: ExportStats = { exportedSpans: 0, droppedSpans: 0, failedExports: 0 };

// The handle of the running SDK, for tracingStats(); set by startTracing, cleared by shutdown.
let running: TracingHandle | undefined;

/**
 * Start the OpenTelemetry SDK for this process: call it first thing, from the
 * service's instrumentation.ts. Throws EnvError naming any bad variable.
 *
 * Built on NodeTracerProvider rather than NodeSDK: NodeSDK reads process.env
 * only (this takes `env`), also wires metrics and log exporters from OTEL_*
 * variables, and hides the span processors whose drops stats() must count.
 * Installs no signal handlers; services call `shutdown()` as one step of their
 * ordered Shutdown.
 */
export function startTracing(opts: StartTracingOptions): TracingHandle {
  const config = resolveTracingConfig(opts, opts.env ?? process.env);
  if (running && !config.disabled) {
    throw new Error("startTracing: tracing is already running in this process; shut it down before starting again");
  }
  configureContentCapture(config.captureContent);
  if (config.disabled) return disabledHandle(registerContextManagerOnly());

  const destinations = createDestinations(config);
  const provider = new NodeTracerProvider({
    resource: defaultResource().merge(
      resourceFromAttributes({
        [ATTR_SERVICE_NAME]: config.serviceName,
        ...(config.serviceVersion ? { [ATTR_SERVICE_VERSION]: config.serviceVersion } : {}),
        "deployment.environment.name": config.deploymentEnvironment,
        // Tells replicas of one service apart (e.g. two analysis workers) in the collector.
        "service.instance.id": randomUUID(),
      }),
    ),
    sampler: opts.untracedRoots
      ? new UntracedHttpRootsSampler(samplerFromConfig(config.sampler.name, config.sampler.ratio), opts.untracedRoots)
      : samplerFromConfig(config.sampler.name, config.sampler.ratio),
    spanProcessors: destinations.map((d) => d.processor),
  });
  let unregister: () => void;
  try {
    unregister = registerTracingGlobals(provider);
  } catch (err) {
    // Close the Redis/gRPC connections the exporters already opened.
    void provider.shutdown().catch(() => undefined);
    throw err;
  }

  let shutdownPromise: Promise<void> | undefined;
  const handle: TracingHandle = {
    enabled: true,
    async forceFlush() {
      await Promise.all(destinations.map((d) => d.processor.forceFlush()));
    },
    shutdown() {
      shutdownPromise ??= (async () => {
        try {
          await Promise.all(destinations.map((d) => d.processor.shutdown()));
        } finally {
          unregister();
          if (running === handle) running = undefined;
        }
      })();
      return shutdownPromise;
    },
    stats() {
      const total: TracingStats = { ...ZERO, destinations: {} };
      for (const d of destinations) {
        const s = d.processor.stats();
        total.destinations[d.name] = s;
        total.exportedSpans += s.exportedSpans;
        total.droppedSpans += s.droppedSpans;
        total.failedExports += s.failedExports;
      }
      return total;
    },
  };
  running = handle;
  return handle;
}

/**
 * startTracing for a service's instrumentation.ts, which runs before anything else: a bad tracing
 * variable (REDIS_URL=notaurl, OTEL_TRACES_SAMPLER=sometimes) ends the process with the same one
 * boot-failure line runService prints, instead of a stack trace from an import.
 */
export function startServiceTracing(opts: StartTracingOptions): TracingHandle {
  try {
    return startTracing(opts);
  } catch (err) {
    if (!(err instanceof EnvError)) throw err;
    process.stderr.write(`${bootFailureLine(opts.serviceName, err)}\n`);
    process.exit(1);
  }
}

/** Export counters of the running SDK (zeros when none), for a service's /metrics or /healthz. */
export function tracingStats(): TracingStats {
  return running?.stats() ?? { ...ZERO, destinations: {} };
}

function createDestinations(config: TracingConfig): Array<{ name: DestinationName; processor: CountedBatchSpanProcessor }> {
  const destinations: Array<{ name: DestinationName; processor: CountedBatchSpanProcessor }> = [];
  if (config.otlp) {
    // url and timeout from the validated env; OTEL_EXPORTER_OTLP_HEADERS / _CERTIFICATE etc. the exporter
    // still reads from process.env itself.
    const exporter = new OTLPTraceExporter({ url: config.otlp.url, timeoutMillis: config.otlp.timeoutMillis });
    const url = config.otlp.url;
    const warned = new WarnOnFirstFailure(exporter, (error) => {
      otlpWarning(config.serviceName, url, error);
    });
    destinations.push({ name: "otlp", processor: new CountedBatchSpanProcessor(warned, config.batch) });
  }
  if (config.spanStream) {
    const exporter = new RedisStreamSpanExporter({
      redisUrl: config.spanStream.redisUrl,
      clusterNodes: config.spanStream.clusterNodes,
      stream: config.spanStream.stream,
      shards: config.spanStream.shards,
      maxLen: config.spanStream.maxLen,
    });
    destinations.push({ name: "redis", processor: new CountedBatchSpanProcessor(exporter, config.batch) });
  }
  return destinations;
}

function disabledHandle(unregister: () => void): TracingHandle {
  return {
    enabled: false,
    forceFlush: async () => undefined,
    shutdown: async () => unregister(),
    stats: () => ({ ...ZERO, destinations: {} }),
  };
}

/**
 * Says once, in the service's log, that the OTLP endpoint does not take spans (nothing listens,
 * wrong port, TLS mismatch), naming it; without this, a missing Jaeger shows only as empty search
 * results. Later failures are counted in stats() (a worker's /healthz shows them), not logged.
 */
class WarnOnFirstFailure implements SpanExporter {
  private warned = false;
  constructor(
    private readonly inner: SpanExporter,
    private readonly onFirstFailure: (error: Error | undefined) => void,
  ) {}

  export(spans: ReadableSpan[], resultCallback: (result: ExportResult) => void): void {
    this.inner.export(spans, (result) => {
      if (result.code !== ExportResultCode.SUCCESS && !this.warned) {
        this.warned = true;
        try {
          this.onFirstFailure(result.error);
        } catch {
          // A warning that cannot be written must not lose the export result.
        }
      }
      resultCallback(result);
    });
  }

  shutdown(): Promise<void> {
    return this.inner.shutdown();
  }

  forceFlush(): Promise<void> {
    return this.inner.forceFlush?.() ?? Promise.resolve();
  }
}

const LEVELS = new Set(["fatal", "error", "warn", "info", "debug", "trace", "silent"]);

function otlpWarning(serviceName: string, url: string, error: Error | undefined): void {
  // Made when needed: tracing starts before the service has validated LOG_LEVEL / LOG_FORMAT.
  const level = process.env.LOG_LEVEL;
  const format = process.env.LOG_FORMAT;
  const logger = createLogger(serviceName, {
    level: level !== undefined && LEVELS.has(level) ? level : "info",
    format: format === "json" || format === "pretty" ? format : "auto",
  });
  // Outside any span: the export callback may run in the context of the span that ended last.
  context.with(ROOT_CONTEXT, () =>
    logger.warn(
      { endpoint: url, reason: error?.message },
      `spans cannot be exported to the OTLP endpoint ${url} (OTEL_EXPORTER_OTLP_ENDPOINT): is Jaeger or another collector listening there? ` +
        "Warned once; later failures are only counted",
    ),
  );
}
