import { envBoolean, envInt, envNumber, parseEnv, serviceEnvShape, type EnvSource } from "@tracelane/runtime";
import { z } from "zod";
import { FAULT_KINDS, isFaultKind, type FaultKind } from "./faults.js";
import { LatencyProfileSchema } from "./latency.js";
import { DEFAULT_SIMULATOR_CONFIG, type SimulatorConfig } from "./state.js";

const blank = (v: string | undefined): v is undefined => v === undefined || v.trim() === "";

/** A JSON-valued variable, checked against `schema`; unset or empty gives `fallback`. */
const envJson = <T extends z.ZodType>(schema: T, fallback: z.input<T>, example: string) =>
  z
    .string()
    .optional()
    .transform((v, ctx): unknown => {
      if (blank(v)) return fallback;
      try {
        return JSON.parse(v);
      } catch {
        ctx.addIssue({ code: "custom", message: `must be JSON such as ${example}` });
        return z.NEVER;
      }
    })
    .pipe(schema);

/** Comma-separated fault kinds, e.g. "429,500,503". */
const envFaultKinds = (fallback: string) =>
  z
    .string()
    .optional()
    .transform((v, ctx): FaultKind[] => {
      const kinds = (blank(v) ? fallback : v)
        .split(",")
        .map((k) => k.trim())
        .filter((k) => k !== "");
      const unknown = kinds.filter((k) => !isFaultKind(k));
      if (unknown.length > 0) {
        ctx.addIssue({
          code: "custom",
          message: `unknown fault kind ${unknown.join(", ")}; expected a comma list of ${FAULT_KINDS.join(", ")}`,
        });
        return z.NEVER;
      }
      return kinds.filter(isFaultKind);
    });

const envOptionalInt = () =>
  z
    .string()
    .optional()
    .transform((v, ctx) => {
      if (blank(v)) return undefined;
      const n = Number(v);
      if (!Number.isSafeInteger(n)) {
        ctx.addIssue({ code: "custom", message: "must be an integer" });
        return z.NEVER;
      }
      return n;
    });

export const EnvSchema = z
  .object({
    ...serviceEnvShape,
    PORT: envInt(4010, { min: 0, max: 65_535 }),
    HOST: z.string().min(1).default("0.0.0.0"),
    /** Unset (or blank, like every variable): "sk-simulator". `*` accepts any bearer key. */
    LLM_SIM_API_KEY: z
      .string()
      .optional()
      .transform((v) => (v === undefined ? DEFAULT_SIMULATOR_CONFIG.apiKey : v.trim() === "*" ? undefined : v.trim())),
    LLM_SIM_LATENCY_MS: envNumber(0, { min: 0 }),
    LLM_SIM_JITTER_MS: envNumber(0, { min: 0 }),
    LLM_SIM_MODEL_LATENCY: envJson(z.record(z.string(), LatencyProfileSchema), {}, '{"gpt-4.1":{"baseMs":800,"jitterMs":400}}'),
    LLM_SIM_FAULT_RATE: envNumber(0, { min: 0, max: 1 }),
    LLM_SIM_FAULT_KINDS: envFaultKinds(DEFAULT_SIMULATOR_CONFIG.faultKinds.join(",")),
    LLM_SIM_RETRY_AFTER_S: envNumber(DEFAULT_SIMULATOR_CONFIG.retryAfterS, { min: 0 }),
    LLM_SIM_CONTEXT_LIMITS: envJson(z.record(z.string(), z.number().int().positive()), {}, '{"gpt-4.1":2000,"*":128000}'),
    LLM_SIM_MIN_TOKENS: envInt(DEFAULT_SIMULATOR_CONFIG.completionTokens.min, { min: 1 }),
    LLM_SIM_MAX_TOKENS: envInt(DEFAULT_SIMULATOR_CONFIG.completionTokens.max, { min: 1 }),
    LLM_SIM_SEED: envOptionalInt(),
    /** `[[sim:fault=…]]` in message text injects faults only when this is true (tests and benchmarks turn it on). */
    LLM_SIM_DIRECTIVES: envBoolean(false),
  })
  .superRefine((env, ctx) => {
    if (env.LLM_SIM_MAX_TOKENS < env.LLM_SIM_MIN_TOKENS) {
      ctx.addIssue({
        code: "custom",
        path: ["LLM_SIM_MAX_TOKENS"],
        message: `must be at least LLM_SIM_MIN_TOKENS (${env.LLM_SIM_MIN_TOKENS})`,
      });
    }
    if (env.LLM_SIM_FAULT_RATE > 0 && env.LLM_SIM_FAULT_KINDS.length === 0) {
      ctx.addIssue({
        code: "custom",
        path: ["LLM_SIM_FAULT_KINDS"],
        message: "must list at least one fault kind when LLM_SIM_FAULT_RATE > 0",
      });
    }
  });

export type SimulatorEnv = z.infer<typeof EnvSchema>;

/** Parse the environment, or throw an EnvError naming every bad variable. */
export function loadEnv(source: EnvSource = process.env): SimulatorEnv {
  return parseEnv(EnvSchema, source);
}

export function configFromEnv(env: SimulatorEnv): SimulatorConfig {
  return {
    apiKey: env.LLM_SIM_API_KEY,
    latency: { baseMs: env.LLM_SIM_LATENCY_MS, jitterMs: env.LLM_SIM_JITTER_MS, models: env.LLM_SIM_MODEL_LATENCY },
    faultRate: env.LLM_SIM_FAULT_RATE,
    faultKinds: env.LLM_SIM_FAULT_KINDS,
    retryAfterS: env.LLM_SIM_RETRY_AFTER_S,
    contextLimits: env.LLM_SIM_CONTEXT_LIMITS,
    completionTokens: { min: env.LLM_SIM_MIN_TOKENS, max: env.LLM_SIM_MAX_TOKENS },
    seed: env.LLM_SIM_SEED,
    directives: env.LLM_SIM_DIRECTIVES,
  };
}
