import { randomUUID } from "node:crypto";
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-grpc";
import { defaultResource, resourceFromAttributes } from "@opentelemetry/resources";
import { NodeTracerProvider } from "@opentelemetry/sdk-trace-node";
import { ATTR_SERVICE_NAME, ATTR_SERVICE_VERSION } from "@opentelemetry/semantic-conventions";
import { configureContentCapture } from "./content.js";
import { CountedBatchSpanProcessor, type ExportStats } from "./counted-batch-processor.js";
import { registerContextManagerOnly, registerTracingGlobals } from "./globals.js";
import { RedisStreamSpanExporter } from "./redis-stream-exporter.js";
import { samplerFromConfig } from "./sampler.js";
import { resolveTracingConfig, type TracingConfig } from "./tracing-env.js";

export interface StartTracingOptions {
  /** service.name; OTEL_SERVICE_NAME overrides it. */
  serviceName: string;
  serviceVersion?: string;
  /** Redis for the span stream to the trace-collector; falls back to REDIS_URL. */
  redisUrl?: string;
  /** Environment to configure from; default process.env. */
  env?: NodeJS.ProcessEnv;
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
    sampler: samplerFromConfig(config.sampler.name, config.sampler.ratio),
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
    destinations.push({ name: "otlp", processor: new CountedBatchSpanProcessor(exporter, config.batch) });
  }
  if (config.spanStream) {
    const exporter = new RedisStreamSpanExporter({
      redisUrl: config.spanStream.redisUrl,
      stream: config.spanStream.stream,
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
