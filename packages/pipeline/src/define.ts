/**
 * One line per stage. The order of the lines is the order of the pipeline: each stage enqueues the
 * next line's stage, and the last one completes the research.
 */
export interface StageLine<S extends string = string, O extends string = string> {
  /** Stage name: lower-case letters and digits (it is part of job ids, env names and Redis fields). */
  stage: S;
  /** BullMQ queue the stage's worker consumes. */
  queue: string;
  /** The worker service (folder services/<service>), whose src/stage.ts holds the stage's prompt. */
  service: string;
  /** Model the worker calls unless `<STAGE>_MODEL` or the request's options.models says otherwise. */
  defaultModel: string;
  /** Name of the stage's output in the research view (`result`, `partialResult`). */
  output: O;
  /**
   * "claims": the stage checks the claims the stage before it made, one BullMQ job per claim (a parent job
   * with a child per claim, run by every replica of the stage's worker), and continues when all are done.
   */
  fanOut?: "claims";
}

/** A stage of a pipeline, with what follows from its line and its place. */
export interface PipelineStage<S extends string = string, O extends string = string> extends StageLine<S, O> {
  /** 0-based position. */
  index: number;
  /** The stage its worker enqueues when it is done; null for the last stage. */
  next: S | null;
  /** Prefix of the stage's own variables: `ANALYSIS` for ANALYSIS_MODEL, ANALYSIS_LLM_BASE_URL... */
  envPrefix: string;
  /** Repo-relative module that exports the stage's prompt (a StageDefinition). */
  promptModule: string;
}

export interface Pipeline<S extends string = string, O extends string = string> {
  readonly stages: readonly PipelineStage<S, O>[];
  /** Stage names in pipeline order. */
  readonly names: readonly [S, ...S[]];
  readonly first: S;
  readonly last: S;
  /** The stage's definition; throws naming the known stages for a name that is not one. */
  stage(name: S): PipelineStage<S, O>;
  has(name: string): name is S;
  /** The stage after `name`, or undefined for the last one. */
  next(name: S): S | undefined;
  /** The stage whose worker is this service, if any. */
  stageOfService(service: string): PipelineStage<S, O> | undefined;
  /** The stage that checks claims one job each (`fanOut: "claims"`), if any. */
  readonly fanOutStage: S | undefined;
  /** The stage whose answer lists the claims (the one before the fan-out stage), if any. */
  readonly claimSource: S | undefined;
}

/** The most claims one research may fan out: the bound on a claim job's index (MAX_CLAIMS may ask for fewer). */
export const MAX_CLAIMS_LIMIT = 32;

/** Thrown when a pipeline definition cannot work (duplicate queue, bad stage name...). */
export class PipelineDefinitionError extends Error {
  override readonly name = "PipelineDefinitionError";
}

const STAGE_NAME = /^[a-z][a-z0-9]*$/;
const OUTPUT_NAME = /^[A-Za-z][A-Za-z0-9]*$/;
const SERVICE_NAME = /^[a-z][a-z0-9-]*$/;

/**
 * Check the lines and derive everything else from them. Every rule here is one a stage worker,
 * BullMQ or the research record would otherwise break on later, at runtime.
 */
export function definePipeline<const L extends readonly [StageLine, ...StageLine[]]>(
  lines: L,
): Pipeline<L[number]["stage"], L[number]["output"]> {
  type S = L[number]["stage"];
  type O = L[number]["output"];
  if (lines.length === 0) throw new PipelineDefinitionError("a pipeline needs at least one stage");
  for (const line of lines) {
    if (!STAGE_NAME.test(line.stage)) {
      throw new PipelineDefinitionError(
        `stage "${line.stage}": a stage name is lower-case letters and digits (it is part of BullMQ job ids and env names)`,
      );
    }
    if (!OUTPUT_NAME.test(line.output))
      throw new PipelineDefinitionError(`stage "${line.stage}": output "${line.output}" must be an identifier`);
    if (!SERVICE_NAME.test(line.service))
      throw new PipelineDefinitionError(`stage "${line.stage}": service "${line.service}" must be a folder name under services/`);
    if (!line.queue || line.queue.includes(":"))
      throw new PipelineDefinitionError(`stage "${line.stage}": queue "${line.queue}" must be non-empty and have no ':'`);
    if (!line.defaultModel) throw new PipelineDefinitionError(`stage "${line.stage}": defaultModel must not be empty`);
    if (line.fanOut && line === lines[0])
      throw new PipelineDefinitionError(`stage "${line.stage}": the first stage cannot fan out (its claims come from the stage before it)`);
  }
  if (lines.filter((l) => l.fanOut).length > 1)
    throw new PipelineDefinitionError("at most one stage may fan out per claim (the research record keeps one claim list)");
  for (const key of ["stage", "queue", "service", "output"] as const) {
    const seen = new Set<string>();
    for (const line of lines) {
      if (seen.has(line[key])) throw new PipelineDefinitionError(`two stages share the ${key} "${line[key]}"`);
      seen.add(line[key]);
    }
  }

  const stages: PipelineStage<S, O>[] = lines.map((line, index) => ({
    ...(line as StageLine<S, O>),
    index,
    next: (lines[index + 1]?.stage ?? null) as S | null,
    envPrefix: line.stage.toUpperCase(),
    promptModule: `services/${line.service}/src/stage.ts`,
  }));
  const byName = new Map<string, PipelineStage<S, O>>(stages.map((s) => [s.stage, s]));
  const names = stages.map((s) => s.stage) as unknown as readonly [S, ...S[]];
  const fanOutIndex = stages.findIndex((s) => s.fanOut);
  const fanOutStage = fanOutIndex >= 0 ? stages[fanOutIndex]!.stage : undefined;

  return Object.freeze({
    stages: Object.freeze(stages),
    names: Object.freeze(names) as readonly [S, ...S[]],
    first: names[0],
    last: names[names.length - 1]!,
    stage(name: S) {
      const found = byName.get(name);
      if (!found) throw new PipelineDefinitionError(`unknown stage "${name}"; the pipeline's stages are ${names.join(", ")}`);
      return found;
    },
    has: (name: string): name is S => byName.has(name),
    next: (name: S) => byName.get(name)?.next ?? undefined,
    stageOfService: (service: string) => stages.find((s) => s.service === service),
    fanOutStage,
    claimSource: fanOutIndex > 0 ? stages[fanOutIndex - 1]!.stage : undefined,
  });
}

/** The stage names of a pipeline, as a type. */
export type StageOf<P> = P extends Pipeline<infer S, string> ? S : never;
/** The output names of a pipeline, as a type. */
export type OutputOf<P> = P extends Pipeline<string, infer O> ? O : never;
