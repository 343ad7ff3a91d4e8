import { z } from "zod";

/** Thrown at boot when the environment is wrong; the message names every bad variable. */
export class EnvError extends Error {
  override readonly name = "EnvError";
  constructor(readonly issues: string[]) {
    super(`Invalid environment:\n${issues.map((i) => `  - ${i}`).join("\n")}`);
  }
}

/** Parse `source` (default process.env) with a zod object schema, or throw an EnvError. */
export function parseEnv<S extends z.ZodType>(
  schema: S,
  source: Record<string, string | undefined> = process.env,
): z.infer<S> {
  const result = schema.safeParse(source);
  if (result.success) return result.data;
  throw new EnvError(
    result.error.issues.map((issue) => {
      const name = issue.path.join(".") || "(environment)";
      const value = issue.path.length === 1 ? source[String(issue.path[0])] : undefined;
      const shown = value === undefined ? "unset" : `got ${JSON.stringify(value.length > 80 ? `${value.slice(0, 80)}…` : value)}`;
      return `${name}: ${issue.message} (${shown})`;
    }),
  );
}

/** Env booleans: "true/false/1/0/yes/no/on/off", parsed once in the schema. */
export const envBoolean = (defaultValue: boolean) =>
  z
    .enum(["true", "false", "1", "0", "yes", "no", "on", "off", ""])
    .optional()
    .transform((v) => (v === undefined || v === "" ? defaultValue : ["true", "1", "yes", "on"].includes(v)));

export const envInt = (defaultValue: number, opts: { min?: number; max?: number } = {}) =>
  z.coerce
    .number()
    .int()
    .min(opts.min ?? Number.MIN_SAFE_INTEGER)
    .max(opts.max ?? Number.MAX_SAFE_INTEGER)
    .default(defaultValue);

export const envNumber = (defaultValue: number, opts: { min?: number; max?: number } = {}) =>
  z.coerce
    .number()
    .min(opts.min ?? -Number.MAX_VALUE)
    .max(opts.max ?? Number.MAX_VALUE)
    .default(defaultValue);

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
