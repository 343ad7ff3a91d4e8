import { trace, type Span } from "@opentelemetry/api";
import { addCostUsd, addUsd } from "@tracelane/pricing";
import { addUsage, type ResearchView, type TokenUsage } from "@tracelane/research-store";
import type { ChatClient, ChatMessage, ChatResult } from "./chat-client.js";
import { ContextTooLongError, fitToBudget, type FitResult } from "./context/fit-context.js";
import { countTokens } from "./context/tokens.js";
import { checkCallBudget } from "./budget.js";
import { CircuitOpenError, ContextLengthExceededError, InvalidModelOutputError, withPaidSpend } from "./errors.js";
import { parseAnswer } from "./structured-answer.js";
import type { StageDefinition, StageMaterial } from "./stage-definition.js";
import {
  ATTR_CONTEXT_RETRY_AFTER_OVERFLOW,
  ATTR_CONTEXT_STRATEGY,
  ATTR_CONTEXT_TRIMMED_TOKENS,
  ATTR_FALLBACK_FROM,
  ATTR_FALLBACK_TO,
  ATTR_OUTPUT_RETRY_AFTER_INVALID,
  ATTR_PURPOSE,
  ATTR_RESEARCH_ID,
  ATTR_STAGE,
  EVENT_FALLBACK,
} from "@tracelane/pipeline";

export interface ModelStepConfig {
  maxOutputTokens: number;
  fallbackModel?: string | undefined;
  /** With a maxCostUsd, call a model that has no price anyway (its cost is unknown: the budget cannot hold). */
  allowUnpricedModels?: boolean;
  context: { strategy: "trim" | "summarize"; summaryModel: string; limits: Record<string, number> };
  /** MAX_CLAIMS: the most claims a structured answer may make (the rest are dropped). */
  maxClaims?: number;
}

export type { DailySpend } from "./budget.js";
import type { DailySpend } from "./budget.js";

export interface ModelStepResult {
  result: ChatResult;
  /** Usage and cost including any summarisation calls made to fit the context. */
  usage: TokenUsage;
  costUsd: number | null;
  /** Of costUsd, what answers thrown away cost (one that did not match the stage's schema). */
  retryCostUsd: number;
  /** The stage's output text: the answer, or for a structured stage the text of its parsed answer. */
  output: string;
  /** The claims a structured answer made (at most maxClaims). */
  claims?: string[];
}

const DEFAULT_CONTEXT_WINDOW = 128_000;
/** Event on the stage consumer when a structured answer did not match its schema (it is asked for again once). */
const EVENT_INVALID_OUTPUT = "invalid_output";
/** After a provider's context_length_exceeded, retry once with this share of what was sent. */
const OVERFLOW_RETRY_SHARE = 0.75;

/**
 * The model call of one stage: fit the prompt into the model's context window
 * (trim, or summarise first), check the research's budget, call the model,
 * fall back to the stage's fallback model while the primary's circuit is open,
 * and trim-and-retry once when the provider still says the context is too long.
 */
export async function runModelStep(
  // Any pipeline's stage: a model step needs the stage's prompt, not which pipeline it is in.
  // `stageSpan`: where the stage's own facts (trimming, fallback, invalid output) go; else the active span.
  // `onDelta`: a streamed stage's text as it arrives.
  deps: {
    definition: StageDefinition<string>;
    client: ChatClient;
    config: ModelStepConfig;
    stageSpan?: Span;
    onDelta?: (text: string, attempt: number) => void;
  },
  view: ResearchView<string, string>,
  outputs: Partial<Record<string, string>>,
  model: string,
  daily?: DailySpend,
): Promise<ModelStepResult> {
  const { definition, client, config } = deps;
  const stage = definition.stage;
  const consumerSpan = deps.stageSpan ?? trace.getActiveSpan();
  const extra = { usage: addUsage(undefined, undefined), costUsd: 0 as number | null };
  const attributes = { [ATTR_STAGE]: stage, [ATTR_RESEARCH_ID]: view.id };

  const budgetFor = (m: string) => contextWindow(client, config, m) - config.maxOutputTokens;
  let material = definition.material(outputs);

  if (config.context.strategy === "summarize") {
    material = await summarizeToFit(material, budgetFor(model));
  }

  /** The last prompt sent, for sizing the retry after an overflow (its token count is computed on demand). */
  let lastFit: FitResult | undefined;
  const call = async (m: string, budget: number, retryAfterOverflow: boolean, fallbackFrom?: string): Promise<ChatResult> => {
    const fit = fitOrFail(m, budget);
    lastFit = fit;
    if (fit.trimmedTokens > 0) consumerSpan?.setAttribute(ATTR_CONTEXT_TRIMMED_TOKENS, fit.trimmedTokens);
    checkBudget(m, fit);
    return client.chat(m, fit.messages, {
      ...(responseFormat ? { responseFormat } : {}),
      ...(deps.onDelta ? { onDelta: deps.onDelta } : {}),
      attributes: {
        ...attributes,
        ...(retryAfterInvalid ? { [ATTR_OUTPUT_RETRY_AFTER_INVALID]: true } : {}),
        ...(fit.trimmedTokens > 0 ? { [ATTR_CONTEXT_TRIMMED_TOKENS]: fit.trimmedTokens, [ATTR_CONTEXT_STRATEGY]: "trim" } : {}),
        ...(retryAfterOverflow ? { [ATTR_CONTEXT_RETRY_AFTER_OVERFLOW]: true } : {}),
        ...(fallbackFrom ? { [ATTR_FALLBACK_FROM]: fallbackFrom } : {}),
      },
    });
  };

  const structured = definition.structured;
  const responseFormat = structured
    ? { name: structured.name, schema: structured.jsonSchema({ maxClaims: config.maxClaims ?? 8 }) }
    : undefined;
  /** Set on the second call after an answer that did not match the schema. */
  let retryAfterInvalid = false;

  const callWithOverflowRetry = async (m: string, fallbackFrom?: string): Promise<ChatResult> => {
    const budget = budgetFor(m);
    lastFit = undefined;
    try {
      return await call(m, budget, false, fallbackFrom);
    } catch (err) {
      // `call` sets lastFit once the prompt fits; unset means our own fit failed (nothing left to trim).
      const sentFit = lastFit as FitResult | undefined;
      if (!(err instanceof ContextLengthExceededError) || !sentFit) throw err;
      // Our table was wrong or the provider counts differently: fit to the window it reported
      // (less the output allowance), else to a smaller share of what was sent. Once.
      const sent = sentFit.inputTokens;
      const retryBudget = err.reportedLimit
        ? Math.floor((err.reportedLimit - config.maxOutputTokens) * 0.95)
        : Math.floor(sent * OVERFLOW_RETRY_SHARE);
      return call(m, Math.min(retryBudget, Math.floor(sent * OVERFLOW_RETRY_SHARE)), true, fallbackFrom);
    }
  };

  const callModel = async (): Promise<ChatResult> => {
    try {
      return await callWithOverflowRetry(model);
    } catch (err) {
      if (!(err instanceof CircuitOpenError) || !config.fallbackModel || config.fallbackModel === model) throw err;
      consumerSpan?.addEvent(EVENT_FALLBACK, { [ATTR_FALLBACK_FROM]: model, [ATTR_FALLBACK_TO]: config.fallbackModel });
      try {
        return await callWithOverflowRetry(config.fallbackModel, model);
      } catch (fallbackErr) {
        if (fallbackErr instanceof CircuitOpenError) throw CircuitOpenError.both(err, fallbackErr);
        throw fallbackErr;
      }
    }
  };

  // A failure after calls were paid for (a context summary, an answer thrown away) carries their spend.
  let result = await callModel().catch((err: unknown) => Promise.reject(withPaidSpend(err, extra)));
  let retryCostUsd = 0;
  let output = result.content;
  let claims: string[] | undefined;
  if (structured) {
    let parsed = parseAnswer(structured, result.content);
    if (!parsed.ok) {
      // Paid for and thrown away: counted in the stage's cost, and apart as retry spend.
      consumerSpan?.addEvent(EVENT_INVALID_OUTPUT, { reason: parsed.reason });
      extra.usage = addUsage(extra.usage, result.usage);
      extra.costUsd = addCostUsd(extra.costUsd, result.costUsd);
      retryCostUsd = addUsd(retryCostUsd, result.costUsd ?? 0);
      retryAfterInvalid = true;
      result = await callModel().catch((err: unknown) => Promise.reject(withPaidSpend(err, extra)));
      parsed = parseAnswer(structured, result.content);
      if (!parsed.ok) {
        const err = new InvalidModelOutputError(
          `${stage}: ${result.responseModel} answered twice with output that does not match what the stage needs: ${parsed.reason}. ` +
            `Choose a model that supports structured outputs (response_format json_schema) via ${stage.toUpperCase()}_MODEL.`,
        );
        throw withPaidSpend(err, {
          usage: addUsage(extra.usage, result.usage),
          costUsd: addCostUsd(extra.costUsd, result.costUsd),
        });
      }
    }
    output = structured.text(parsed.value);
    claims = structured.claims?.(parsed.value).slice(0, config.maxClaims ?? 8);
  }

  return {
    result,
    output,
    ...(claims ? { claims } : {}),
    usage: addUsage(result.usage, extra.usage),
    costUsd: addCostUsd(result.costUsd, extra.costUsd),
    retryCostUsd,
  };

  function fitOrFail(m: string, budget: number) {
    try {
      return fitToBudget(definition, view.query, material, budget);
    } catch (err) {
      if (err instanceof ContextTooLongError) {
        throw new ContextLengthExceededError(
          { baseURL: "", model: m, apiKeyVar: "", modelVar: `${stage.toUpperCase()}_MODEL` },
          `context too long after trimming (${err.message})`,
        );
      }
      throw err;
    }
  }

  function checkBudget(m: string, fit: FitResult) {
    if (view.options.maxCostUsd === undefined && daily === undefined) return;
    checkCallBudget({
      stage,
      model: m,
      prices: client.prices,
      // May run the tokenizer: read only when there is a budget to check.
      inputTokens: fit.inputTokens,
      maxOutputTokens: config.maxOutputTokens,
      allowUnpricedModels: config.allowUnpricedModels,
      maxCostUsd: view.options.maxCostUsd,
      spentUsd: view.totals.costUsd + (extra.costUsd ?? 0),
      ...(daily ? { daily: { capUsd: daily.capUsd, leftUsd: daily.leftUsd - (extra.costUsd ?? 0) } } : {}),
    });
  }

  /** Replace the oldest material with cheap-model summaries until the prompt fits. */
  async function summarizeToFit(items: StageMaterial[], budget: number): Promise<StageMaterial[]> {
    const out = items.map((m) => ({ ...m }));
    const total = () => countTokens(definition.system) + countTokens(view.query) + out.reduce((n, m) => n + countTokens(m.text), 0) + 32;
    for (const item of out) {
      const excess = total() - budget;
      if (excess <= 0) break;
      const target = Math.max(64, countTokens(item.text) - excess);
      const messages: ChatMessage[] = [
        { role: "system", content: `Summarise the text in at most ${target} tokens. Keep every figure, name, date and claim.` },
        { role: "user", content: item.text },
      ];
      const summary = await client.chat(config.context.summaryModel, messages, {
        attributes: { ...attributes, [ATTR_PURPOSE]: "summarize_for_context" },
        maxOutputTokens: target,
      });
      consumerSpan?.setAttribute(ATTR_CONTEXT_STRATEGY, "summarize");
      extra.usage = addUsage(extra.usage, summary.usage);
      extra.costUsd = addCostUsd(extra.costUsd, summary.costUsd);
      item.text = `[summary] ${summary.content}`;
    }
    return out;
  }
}

function contextWindow(client: ChatClient, config: ModelStepConfig, model: string): number {
  return config.context.limits[model] ?? client.prices.lookup(model)?.contextWindow ?? DEFAULT_CONTEXT_WINDOW;
}
