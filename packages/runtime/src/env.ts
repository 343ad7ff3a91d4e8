import { z } from "zod";

export type EnvSource = Record<string, string | undefined>;

/** Thrown at boot when the environment is wrong; `issues` names every bad variable, its value and what is allowed. */
export class EnvError extends Error {
  override readonly name = "EnvError";
  constructor(readonly issues: string[]) {
    super(`Invalid environment:\n${issues.map((i) => `  - ${i}`).join("\n")}`);
  }
}

/**
 * `source` without its blank values. A blank value means unset everywhere (compose passes `VAR=` for
 * unset, and `PORT= pnpm start` reads the same), so every default applies to it; dropping them before
 * the one parse means no schema has to remember (langfuse worker/src/env.ts does the same).
 */
export function withoutBlankValues(source: EnvSource): EnvSource {
  const out: EnvSource = {};
  for (const [name, value] of Object.entries(source)) {
    if (value !== undefined && value.trim() !== "") out[name] = value;
  }
  return out;
}

/** Parse `source` (default process.env) with a zod object schema, blank values unset, or throw an EnvError. */
export function parseEnv<S extends z.ZodType>(schema: S, source: EnvSource = process.env): z.infer<S> {
  const present = withoutBlankValues(source);
  const result = schema.safeParse(present);
  if (result.success) return result.data;
  throw new EnvError(
    result.error.issues.map((issue) => {
      const name = issue.path.join(".") || "(environment)";
      const value = issue.path.length === 1 ? present[String(issue.path[0])] : undefined;
      const shown = value === undefined ? "unset" : `got ${JSON.stringify(value.length > 80 ? `${value.slice(0, 80)}…` : value)}`;
      return `${name}: ${issue.message} (${shown})`;
    }),
  );
}

/** Env booleans: "true/false/1/0/yes/no/on/off", parsed once in the schema. */
export const envBoolean = (defaultValue: boolean) =>
  z
    .enum(["true", "false", "1", "0", "yes", "no", "on", "off", ""], { message: "must be true or false (also 1/0, yes/no, on/off)" })
    .optional()
    .transform((v) => (v === undefined || v === "" ? defaultValue : ["true", "1", "yes", "on"].includes(v)));

const range = (opts: { min?: number; max?: number }) =>
  opts.min !== undefined && opts.max !== undefined
    ? `from ${opts.min} to ${opts.max}`
    : opts.min !== undefined
      ? `of at least ${opts.min}`
      : opts.max !== undefined
        ? `of at most ${opts.max}`
        : "";

export const envInt = (defaultValue: number, opts: { min?: number; max?: number } = {}) => {
  const allowed = `must be a whole number ${range(opts)}`.trim();
  return z.coerce
    .number({ message: allowed })
    .int(allowed)
    .min(opts.min ?? Number.MIN_SAFE_INTEGER, allowed)
    .max(opts.max ?? Number.MAX_SAFE_INTEGER, allowed)
    .default(defaultValue);
};

export const envNumber = (defaultValue: number, opts: { min?: number; max?: number } = {}) => {
  const allowed = `must be a number ${range(opts)}`.trim();
  return z.coerce
    .number({ message: allowed })
    .min(opts.min ?? -Number.MAX_VALUE, allowed)
    .max(opts.max ?? Number.MAX_VALUE, allowed)
    .default(defaultValue);
};

export const envUrl = (defaultValue?: string) =>
  defaultValue === undefined
    ? z.string().url("must be a URL such as http://host:port")
    : z.string().url("must be a URL such as http://host:port").default(defaultValue);

/** Optional string where an empty value means unset (compose passes `VAR=` for unset). */
export const envOptionalString = () =>
  z
    .string()
    .optional()
    .transform((v) => (v === undefined || v.trim() === "" ? undefined : v));

export const REDIS_URL_DEFAULT = "redis://127.0.0.1:6379";

const REDIS_URL_ALLOWED = "must be a redis:// or rediss:// URL such as redis://127.0.0.1:6379";

/** A Redis URL as ioredis takes it: redis:// or rediss://, with a host. The same check in every service. */
export const redisUrlSchema = () =>
  z.string().refine((v) => {
    try {
      const url = new URL(v);
      return (url.protocol === "redis:" || url.protocol === "rediss:") && url.hostname !== "";
    } catch {
      return false;
    }
  }, REDIS_URL_ALLOWED);

export const envRedisUrl = () => redisUrlSchema().default(REDIS_URL_DEFAULT);

/** The URL with its password replaced, for log lines and error messages. */
export function redactUrl(text: string): string {
  try {
    const url = new URL(text);
    if (url.password === "") return text;
    url.password = "***";
    return url.toString();
  } catch {
    return text;
  }
}

export const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
export const LOG_FORMATS = ["auto", "json", "pretty"] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

/**
 * What every service reads the same way: log level and format, Redis (for those that use it), the
 * shutdown deadline, and whether to exit with the process that started it. Spread into each
 * service's schema so there is one parse, one message format, one default.
 */
export const serviceEnvShape = {
  LOG_LEVEL: z.enum(LOG_LEVELS, { message: `must be one of ${LOG_LEVELS.join(", ")}` }).default("info"),
  /** auto: human-readable lines when stdout is a terminal, JSON otherwise. */
  LOG_FORMAT: z.enum(LOG_FORMATS, { message: `must be one of ${LOG_FORMATS.join(", ")}` }).default("auto"),
  /** After SIGTERM/SIGINT, exit 1 if the ordered shutdown has not finished by then. */
  SHUTDOWN_GRACE_MS: envInt(30_000, { min: 0, max: 3_600_000 }),
  /**
   * Stop when the parent process goes away (`pnpm start`, `pnpm --filter X start`: pnpm does not pass
   * SIGTERM on). Unset: on when run by a package-manager script (npm_lifecycle_event is set).
   */
  TRACELANE_EXIT_WITH_PARENT: z
    .enum(["true", "false"], { message: "must be true or false" })
    .optional()
    .transform((v) => (v === undefined ? undefined : v === "true")),
} as const;

const CLUSTER_NODES_ALLOWED = "must be a comma-separated list of host:port seed nodes such as 10.0.0.1:7000,10.0.0.2:7000";

/** `host:port,host:port` (REDIS_CLUSTER_NODES): the seed nodes of a Redis Cluster; any reachable one finds the rest. */
export const envClusterNodes = () =>
  z
    .string()
    .optional()
    .transform((v, ctx) => {
      if (v === undefined || v.trim() === "") return undefined;
      const nodes = v.split(",").map((part) => part.trim());
      const parsed = nodes.map((node) => /^(\[[0-9a-fA-F:.]+\]|[^\s:/[\]]+):(\d{1,5})$/.exec(node));
      if (parsed.some((m) => m === null || Number(m[2]) < 1 || Number(m[2]) > 65535)) {
        ctx.addIssue({ code: "custom", message: CLUSTER_NODES_ALLOWED });
        return z.NEVER;
      }
      return parsed.map((m) => ({ host: m![1]!.replace(/^\[|\]$/g, ""), port: Number(m![2]) }));
    });

export const redisEnvShape = {
  REDIS_URL: envRedisUrl(),
  /**
   * Seed nodes of a Redis Cluster. Set, every service connects to the cluster (ioredis Cluster) and REDIS_URL
   * only lends its credentials and TLS (rediss://) to each node; unset, REDIS_URL is the one Redis.
   */
  REDIS_CLUSTER_NODES: envClusterNodes(),
  /** A Redis that does not answer within this at boot fails the start, naming the URL. */
  REDIS_CONNECT_TIMEOUT_MS: envInt(5_000, { min: 100, max: 600_000 }),
} as const;

export type ServiceEnv = z.infer<z.ZodObject<typeof serviceEnvShape>>;
export type RedisEnv = z.infer<z.ZodObject<typeof redisEnvShape>>;
