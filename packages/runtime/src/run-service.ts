import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { BootError } from "./boot-error.js";
import { EnvError, redactUrl, type EnvSource, type LogFormat, type LogLevel, type RedisEnv, type ServiceEnv } from "./env.js";
import { exitsWithParent, watchParent } from "./parent-watch.js";
import { closeRedis, createRedis, RedisUnavailableError, waitForRedis, type RedisClient, type RedisRole } from "./redis.js";
import { Shutdown, type ShutdownLogger } from "./shutdown.js";

export interface ServiceLogger extends ShutdownLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
}

/** What a service is, for `runService`: its env, its logger, and what it starts. */
export interface ServiceDefinition<E extends ServiceEnv, L extends ServiceLogger, R> {
  /** Names the process in its logs and its boot-failure line ("api", "analysis-worker"). */
  name: string;
  /** One parse of the whole environment (a schema that spreads serviceEnvShape); throws EnvError. */
  loadEnv(source: EnvSource): E;
  createLogger(name: string, opts: { level: LogLevel; format: LogFormat }): L;
  /** Flushed after the service's own shutdown steps, before its Redis connections close. */
  tracing?: { shutdown(): Promise<void> } | undefined;
  /** Connect, listen, register shutdown steps (in the order they must run); resolve when serving. */
  start(ctx: ServiceContext<E, L>): Promise<R>;
}

export interface ServiceContext<E, L> {
  name: string;
  env: E;
  logger: L;
  shutdown: Shutdown;
  /**
   * A Redis connection to REDIS_URL (or the cluster of REDIS_CLUSTER_NODES), ready, or a BootError naming it
   * after REDIS_CONNECT_TIMEOUT_MS. Logs "connecting to redis at …" first; closed as the last shutdown step.
   */
  connectRedis(role: RedisRole, connectionName: string): Promise<RedisClient>;
  /** `server.listen`, with a port in use reported as a BootError naming `variable`; resolves to the bound port. */
  listen(server: Server, opts: { port: number; host?: string | undefined; variable: string }): Promise<number>;
  /**
   * Run `listener` on each reload request: SIGHUP under runService (the handler is installed with the first
   * listener, so a service with nothing to reload still stops on SIGHUP), `BootedService.reload()` under bootService.
   */
  onReload(listener: () => void): void;
}

export interface BootedService<E, L, R> {
  env: E;
  logger: L;
  shutdown: Shutdown;
  value: R;
  /** What SIGHUP does under runService: run the listeners registered with `ctx.onReload`. */
  reload(): void;
}

type AnyEnv = ServiceEnv & Partial<RedisEnv>;

/**
 * Boot a service in this process without touching process-wide state (no signal handlers, no
 * exit): for tests and harnesses that run services in-process. A failed start runs the shutdown
 * steps registered so far (closing what was opened) and rejects.
 */
export async function bootService<E extends AnyEnv, L extends ServiceLogger, R>(
  definition: ServiceDefinition<E, L, R>,
  opts: { env?: EnvSource } = {},
): Promise<BootedService<E, L, R>> {
  const env = definition.loadEnv(opts.env ?? process.env);
  const logger = definition.createLogger(definition.name, { level: env.LOG_LEVEL, format: env.LOG_FORMAT });
  const shutdown = newShutdown(definition, logger);
  const reloads = new Reloads();
  try {
    const value = await definition.start(context(definition, env, logger, shutdown, reloads));
    return { env, logger, shutdown, value, reload: () => reloads.run() };
  } catch (err) {
    await shutdown.shutdown("start failed");
    throw err;
  }
}

/**
 * The one entrypoint path of every service: env -> logger -> start (Redis, HTTP...) -> ordered
 * shutdown on SIGTERM/SIGINT (or when the parent pnpm goes away), within SHUTDOWN_GRACE_MS. A start
 * that fails prints one plain line (the variable, the bad value, what is allowed) and exits 1.
 */
export async function runService<E extends AnyEnv, L extends ServiceLogger, R>(definition: ServiceDefinition<E, L, R>): Promise<void> {
  let env: E;
  try {
    env = definition.loadEnv(process.env);
  } catch (err) {
    return exitBootFailure(definition.name, err, process.env.LOG_LEVEL);
  }
  const logger = definition.createLogger(definition.name, { level: env.LOG_LEVEL, format: env.LOG_FORMAT });
  const shutdown = newShutdown(definition, logger);
  shutdown.installSignalHandlers({ graceMs: env.SHUTDOWN_GRACE_MS });
  if (exitsWithParent(env.TRACELANE_EXIT_WITH_PARENT)) {
    watchParent(() => {
      logger.info({ parentPid: process.ppid }, "the process that started this one exited; shutting down");
      shutdown.stopAndExit("parent exited", env.SHUTDOWN_GRACE_MS);
    });
  }
  const reloads = new Reloads(() =>
    process.on("SIGHUP", () => {
      logger.info({ signal: "SIGHUP" }, "SIGHUP: reloading");
      reloads.run();
    }),
  );
  try {
    await definition.start(context(definition, env, logger, shutdown, reloads));
  } catch (err) {
    // A signal during boot is a shutdown, not a failure: its handler exits.
    if (shutdown.started) return;
    exitBootFailure(definition.name, err, env.LOG_LEVEL);
  }
}

function newShutdown(definition: { tracing?: { shutdown(): Promise<void> } | undefined }, logger: ShutdownLogger): Shutdown {
  const shutdown = new Shutdown(logger);
  // Registered first among the final steps, so spans are flushed before any Redis connection closes.
  if (definition.tracing) shutdown.addFinal("flush spans", () => definition.tracing!.shutdown());
  return shutdown;
}

/** The listeners of `ctx.onReload`; `onFirst` runs when the first one registers. */
class Reloads {
  private readonly listeners: Array<() => void> = [];
  constructor(private readonly onFirst?: () => void) {}
  add(listener: () => void): void {
    if (this.listeners.length === 0) this.onFirst?.();
    this.listeners.push(listener);
  }
  run(): void {
    for (const listener of this.listeners) listener();
  }
}

function context<E extends AnyEnv, L extends ServiceLogger>(
  definition: { name: string },
  env: E,
  logger: L,
  shutdown: Shutdown,
  reloads: Reloads,
): ServiceContext<E, L> {
  let announced = false;
  return {
    name: definition.name,
    env,
    logger,
    shutdown,
    async connectRedis(role, connectionName) {
      if (env.REDIS_URL === undefined || env.REDIS_CONNECT_TIMEOUT_MS === undefined) {
        throw new Error(`${definition.name}: connectRedis needs redisEnvShape in the service's env schema`);
      }
      const cluster = env.REDIS_CLUSTER_NODES;
      const shown = cluster ? `cluster ${cluster.map((n) => `${n.host}:${n.port}`).join(",")}` : redactUrl(env.REDIS_URL);
      if (!announced) logger.info({ redisUrl: shown }, `connecting to redis at ${shown}`);
      announced = true;
      const redis = createRedis({ url: env.REDIS_URL, clusterNodes: cluster }, role, { connectionName });
      shutdown.addFinal(`disconnect redis (${connectionName})`, () => closeRedis(redis));
      try {
        await waitForRedis(redis, env.REDIS_CONNECT_TIMEOUT_MS, cluster ? shown : env.REDIS_URL);
      } catch (err) {
        const variable = cluster ? "REDIS_CLUSTER_NODES" : "REDIS_URL";
        if (err instanceof RedisUnavailableError) throw new BootError(`${variable}: ${err.message}`, variable);
        throw err;
      }
      return redis;
    },
    listen: (server, opts) => listen(server, opts),
    onReload: (listener) => reloads.add(listener),
  };
}

/** `server.listen`; EADDRINUSE/EACCES become a BootError naming the variable and the port. */
export async function listen(server: Server, opts: { port: number; host?: string | undefined; variable: string }): Promise<number> {
  try {
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(opts.port, opts.host, () => {
        server.off("error", reject);
        resolve();
      });
    });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const where = `port ${opts.port}${opts.host ? ` on ${opts.host}` : ""}`;
    if (code === "EADDRINUSE") {
      throw new BootError(
        `${opts.variable}: ${where} is already in use (got ${opts.port}); stop what uses it or choose another port (0 picks a free one)`,
        opts.variable,
      );
    }
    if (code === "EACCES")
      throw new BootError(`${opts.variable}: no permission to listen on ${where} (got ${opts.port}); use a port above 1023`, opts.variable);
    throw err;
  }
  return (server.address() as AddressInfo).port;
}

const OPERATOR_ERRORS = new Set(["EnvError", "BootError", "RedisUnavailableError"]);

/** The one boot-failure line: `<service>: cannot start: <what, the value, what is allowed>`. */
export function bootFailureLine(service: string, err: unknown): string {
  let detail: string;
  if (err instanceof EnvError) detail = err.issues.join("; ");
  else if (err instanceof Error)
    detail = OPERATOR_ERRORS.has(err.name) || err.name === "Error" ? err.message : `${err.name}: ${err.message}`;
  else detail = String(err);
  return `${service}: cannot start: ${detail.replace(/\s*\n\s*/g, " ")}`;
}

function exitBootFailure(service: string, err: unknown, logLevel: string | undefined): never {
  process.stderr.write(`${bootFailureLine(service, err)}\n`);
  // The line is for the operator; the stack only helps whoever debugs the service itself.
  if ((logLevel === "debug" || logLevel === "trace") && err instanceof Error && err.stack) process.stderr.write(`${err.stack}\n`);
  process.exit(1);
}
