/**
 * Span attribute and event names of research jobs, spelled once. The stage runner writes them;
 * trace-store and the collector read them back from stored spans. They live beside the pipeline,
 * not in @tracelane/tracing, which knows OpenTelemetry and carriers but not research jobs.
 */

/** The research a span works for (api request, stage consumer, model call). */
export const ATTR_RESEARCH_ID = "tracelane.research.id";
/**
 * The API key id (never the key) that owns the research a span works for; the api sets it on its request
 * span. The collector lets an OTLP span join that trace only with the owner's key (or an admin's).
 */
export const ATTR_OWNER = "tracelane.owner";
/** The pipeline stage a span belongs to (stage consumer and its model calls). */
export const ATTR_STAGE = "tracelane.stage";
/** True when a stage attempt found its output already checkpointed and did not call the model. */
export const ATTR_CHECKPOINT_REUSED = "tracelane.checkpoint.reused";

/** HTTP attempts one model call made (1 + the retries of the model client). */
export const ATTR_LLM_ATTEMPTS = "tracelane.llm.attempts";
/** State of the provider+model circuit breaker after the call: closed, open or half-open. */
export const ATTR_CIRCUIT_STATE = "tracelane.circuit.state";
/** The primary model a fallback call replaces (on the call), and the switch (on the `fallback` event). */
export const ATTR_FALLBACK_FROM = "tracelane.fallback.from";
export const ATTR_FALLBACK_TO = "tracelane.fallback.to";
export const EVENT_FALLBACK = "fallback";
/** Why a model call was made when it is not the stage's own call, e.g. "summarize_for_context". */
export const ATTR_PURPOSE = "tracelane.purpose";

/** Tokens of earlier outputs cut so the prompt fits the model's context window. */
export const ATTR_CONTEXT_TRIMMED_TOKENS = "tracelane.context.trimmed_tokens";
/** How an over-long context was fitted: "trim" or "summarize". */
export const ATTR_CONTEXT_STRATEGY = "tracelane.context.strategy";
/** True on the second call after the provider said the context was too long. */
export const ATTR_CONTEXT_RETRY_AFTER_OVERFLOW = "tracelane.context.retry_after_overflow";

/** Event on the stage consumer when a provider 429 pauses the whole queue, with the pause in ms. */
export const EVENT_QUEUE_RATE_LIMITED = "queue_rate_limited";
export const ATTR_RATE_LIMIT_DELAY_MS = "tracelane.rate_limit.delay_ms";
/** Event on the stage consumer when a concurrent attempt of the same job checkpointed first. */
export const EVENT_CHECKPOINT_ALREADY_WRITTEN = "checkpoint_already_written";

/** Events on the stage consumer while every model of the stage has its circuit open. */
export const EVENT_CIRCUIT_OPEN_DELAYED = "circuit_open_delayed";
export const EVENT_CIRCUIT_OPEN_WAIT_EXCEEDED = "circuit_open_wait_exceeded";
/** The models whose circuits are open (comma-separated), how long the job is delayed, how long the stage has waited. */
export const ATTR_CIRCUIT_MODELS = "tracelane.circuit.models";
export const ATTR_CIRCUIT_DELAY_MS = "tracelane.circuit.delay_ms";
export const ATTR_CIRCUIT_WAITED_MS = "tracelane.circuit.waited_ms";

/** The claim (0-based, in the order the analysis made them) a claim job and its spans check. */
export const ATTR_CLAIM_INDEX = "tracelane.claim.index";
/** How many claims a fan-out stage checked (on the span that continues after the fan-in). */
export const ATTR_CLAIM_COUNT = "tracelane.claim.count";
/** A claim's verdict: supported, refuted or unverifiable. */
export const ATTR_CLAIM_VERDICT = "tracelane.claim.verdict";
/** The model turn of a claim's tool loop (1-based). */
export const ATTR_TOOL_TURN = "tracelane.tool.turn";
/** True on the second call after a structured answer did not match its schema. */
export const ATTR_OUTPUT_RETRY_AFTER_INVALID = "tracelane.output.retry_after_invalid";

/**
 * True on the stage CONSUMER span whose job completed the research (the last stage's). The trace-collector records
 * the research's per-stage token totals for the submit-time forecast once it sees it (after a settle delay).
 */
export const ATTR_RESEARCH_COMPLETED = "tracelane.research.completed";
/** Characters of the research question, on the api's request span: the forecast's input estimate for the first stage. */
export const ATTR_QUERY_CHARS = "tracelane.query.chars";
