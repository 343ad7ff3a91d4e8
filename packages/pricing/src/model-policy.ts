import { envOptionalString } from "@tracelane/runtime";
import type { PriceSource } from "./price-table.js";

/** What the model policy needs of a pipeline stage (a @tracelane/pipeline PipelineStage fits). */
export interface PolicyStage {
  stage: string;
  /** `ANALYSIS` for ANALYSIS_MODEL, ANALYSIS_FALLBACK_MODEL, ANALYSIS_ALLOWED_MODELS. */
  envPrefix: string;
  defaultModel: string;
}

/** The models one stage runs and may run. */
export interface StageModels {
  /** `<STAGE>_MODEL`, else the pipeline's default model. */
  model: string;
  /** `<STAGE>_FALLBACK_MODEL`. */
  fallbackModel?: string | undefined;
  /** `<STAGE>_ALLOWED_MODELS`; undefined: every model with a price. */
  allowed?: readonly string[] | undefined;
}

/** `<STAGE>_ALLOWED_MODELS`: comma-separated model names; unset or blank: the default list. */
export const allowedModelsEnv = () =>
  envOptionalString().transform((v) =>
    v === undefined
      ? undefined
      : v
          .split(",")
          .map((m) => m.trim())
          .filter((m) => m !== ""),
  );

/** The variables a stage's model policy is read from, for an env schema (the api reads every stage's). */
export function stageModelEnvShape(stages: readonly PolicyStage[]) {
  const shape: Record<string, ReturnType<typeof envOptionalString> | ReturnType<typeof allowedModelsEnv>> = {};
  for (const { envPrefix: P } of stages) {
    shape[`${P}_MODEL`] = envOptionalString();
    shape[`${P}_FALLBACK_MODEL`] = envOptionalString();
    shape[`${P}_ALLOWED_MODELS`] = allowedModelsEnv();
  }
  return shape;
}

/** A model a stage may not run: what the api answers 400 with and a worker fails the job with. */
export interface ModelRefusal {
  stage: string;
  model: string;
  /** The stage's allowed models, for the message. */
  allowed: string[];
  /** Which variable to set to allow it. */
  variable: string;
  message: string;
}

/**
 * Which models each stage may run: its configured model, its fallback, and `<STAGE>_ALLOWED_MODELS`
 * (default: every model the price table prices, so a budget can always be checked). Anything else a
 * request names in options.models is refused before anything is created or called.
 */
export class ModelPolicy {
  private constructor(
    private readonly stages: ReadonlyMap<string, StageModels & { envPrefix: string }>,
    private readonly prices: PriceSource,
  ) {}

  /** The policy of `stages` from parsed env values (`stageModelEnvShape`, or a worker's own overrides). */
  static fromEnv(stages: readonly PolicyStage[], env: Readonly<Record<string, unknown>>, prices: PriceSource): ModelPolicy {
    const str = (v: unknown) => (typeof v === "string" && v !== "" ? v : undefined);
    const byStage = new Map<string, StageModels & { envPrefix: string }>();
    for (const s of stages) {
      const P = s.envPrefix;
      const allowed = env[`${P}_ALLOWED_MODELS`];
      byStage.set(s.stage, {
        envPrefix: P,
        model: str(env[`${P}_MODEL`]) ?? s.defaultModel,
        fallbackModel: str(env[`${P}_FALLBACK_MODEL`]),
        allowed: Array.isArray(allowed) ? allowed.filter((m): m is string => typeof m === "string") : undefined,
      });
    }
    return new ModelPolicy(byStage, prices);
  }

  /** The model the stage's worker runs unless a research names another (<STAGE>_MODEL, else the pipeline's default). */
  model(stage: string): string {
    return this.stage(stage).model;
  }

  /** The stage's allowed models, configured and fallback first. */
  allowed(stage: string): string[] {
    const s = this.stage(stage);
    const listed = s.allowed ?? this.prices.entries.map((e) => e.model);
    return [...new Set([s.model, ...(s.fallbackModel ? [s.fallbackModel] : []), ...listed])];
  }

  /** Undefined when `stage` may run `model`; else why not. */
  refusal(stage: string, model: string): ModelRefusal | undefined {
    const s = this.stage(stage);
    if (model === s.model || model === s.fallbackModel) return undefined;
    if (s.allowed ? s.allowed.includes(model) : this.prices.lookup(model) !== undefined) return undefined;
    const allowed = this.allowed(stage);
    const variable = `${s.envPrefix}_ALLOWED_MODELS`;
    return {
      stage,
      model,
      allowed,
      variable,
      message:
        `Model "${model}" is not allowed for the ${stage} stage. Allowed: ${allowed.join(", ")}. ` +
        `Choose one of them, or ask the operator to add it to ${variable}${s.allowed ? "" : " (by default only priced models are allowed)"}.`,
    };
  }

  private stage(stage: string) {
    const s = this.stages.get(stage);
    if (!s) throw new Error(`model policy: unknown stage "${stage}"; known: ${[...this.stages.keys()].join(", ")}`);
    return s;
  }
}
