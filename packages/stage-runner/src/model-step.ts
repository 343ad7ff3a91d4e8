import { trace } from "@opentelemetry/api";
import { addUsd } from "@tracelane/pricing";
import type { ResearchView } from "@tracelane/research-store";
import type { ChatClient, ChatMessage, ChatResult } from "./chat-client.js";
import { ContextTooLongError, fitToBudget, type FitResult } from "./context/fit-context.js";
import { countTokens } from "./context/tokens.js";
import {
  BudgetExceededError,
  BudgetUnverifiableError,
  CircuitOpenError,
  ContextLengthExceededError,
  DailySpendCapError,
} from "./errors.js";
import type { StageDefinition, StageMaterial } from "./stage-definition.js";
import {
  ATTR_CONTEXT_RETRY_AFTER_OVERFLOW,
  ATTR_CONTEXT_STRATEGY,
  ATTR_CONTEXT_TRIMMED_TOKENS,
  ATTR_FALLBACK_FROM,
  ATTR_FALLBACK_TO,
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
}

/** The research's spender's daily cap (DAILY_SPEND_CAP_USD) and what was left of it when the step began. */
export interface DailySpend {
  capUsd: number;
  leftUsd: number;
}

export interface ModelStepResult {
  result: ChatResult;
  /** Usage and cost including any summarisation calls made to fit the context. */
  usage: { inputTokens: number; outputTokens: number };
  costUsd: number | null;
}

const DEFAULT_CONTEXT_WINDOW = 128_000;
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
  deps: { definition: StageDefinition<string>; client: ChatClient; config: ModelStepConfig },
  view: ResearchView<string, string>,
  outputs: Partial<Record<string, string>>,
  model: string,
  daily?: DailySpend,
): Promise<ModelStepResult> {
  const { definition, client, config } = deps;
  const stage = definition.stage;
  const consumerSpan = trace.getActiveSpan();
  const extra = { inputTokens: 0, outputTokens: 0, costUsd: 0 as number | null };
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
      attributes: {
        ...attributes,
        ...(fit.trimmedTokens > 0 ? { [ATTR_CONTEXT_TRIMMED_TOKENS]: fit.trimmedTokens, [ATTR_CONTEXT_STRATEGY]: "trim" } : {}),
        ...(retryAfterOverflow ? { [ATTR_CONTEXT_RETRY_AFTER_OVERFLOW]: true } : {}),
        ...(fallbackFrom ? { [ATTR_FALLBACK_FROM]: fallbackFrom } : {}),
      },
    });
  };

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

  let result: ChatResult;
  try {
    result = await callWithOverflowRetry(model);
  } catch (err) {
    if (!(err instanceof CircuitOpenError) || !config.fallbackModel || config.fallbackModel === model) throw err;
    consumerSpan?.addEvent(EVENT_FALLBACK, { [ATTR_FALLBACK_FROM]: model, [ATTR_FALLBACK_TO]: config.fallbackModel });
    try {
      result = await callWithOverflowRetry(config.fallbackModel, model);
    } catch (fallbackErr) {
      if (fallbackErr instanceof CircuitOpenError) throw CircuitOpenError.both(err, fallbackErr);
      throw fallbackErr;
    }
  }

  return {
    result,
    usage: { inputTokens: result.usage.inputTokens + extra.inputTokens, outputTokens: result.usage.outputTokens + extra.outputTokens },
    costUsd: result.costUsd === null || extra.costUsd === null ? null : addUsd(result.costUsd, extra.costUsd),
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

  /**
   * The research's budget (maxCostUsd) and its spender's daily cap, whichever is tighter, checked on
   * the call's estimate (input tokens + the whole output allowance). `fit.inputTokens` may run the
   * tokenizer: read only when there is a budget to check.
   */
  function checkBudget(m: string, fit: FitResult) {
    const max = view.options.maxCostUsd;
    if (max === undefined && daily === undefined) return;
    const inputTokens = fit.inputTokens;
    const estimate = client.prices.cost(m, { inputTokens, outputTokens: config.maxOutputTokens }).costUsd;
    if (estimate === null) {
      if (config.allowUnpricedModels) return; // the operator accepted unknown costs; the record marks it unpriced
      const what = max !== undefined ? `maxCostUsd $${max}` : `the daily spend cap (DAILY_SPEND_CAP_USD $${daily!.capUsd})`;
      throw new BudgetUnverifiableError(
        `Stopped before ${stage}: ${m} has no price in the price table, so ${what} cannot be enforced. ` +
          `Choose a priced model, add ${m} to the price table (TRACELANE_PRICE_TABLE), or set ALLOW_UNPRICED_MODELS=true on the ${stage} worker.`,
      );
    }
    const call = `its estimated cost $${estimate.toFixed(6)} (${inputTokens} input + up to ${config.maxOutputTokens} output tokens on ${m})`;
    const extraSpent = extra.costUsd ?? 0;
    if (max !== undefined) {
      const left = max - (view.totals.costUsd + extraSpent);
      if (estimate > left) {
        throw new BudgetExceededError(
          `Stopped before ${stage}: ${call} exceeds the $${Math.max(0, left).toFixed(6)} left of maxCostUsd $${max}. Raise options.maxCostUsd or choose cheaper models.`,
        );
      }
    }
    if (daily !== undefined) {
      const left = daily.leftUsd - extraSpent;
      if (estimate > left) {
        throw new DailySpendCapError(
          `Stopped before ${stage}: ${call} exceeds the $${Math.max(0, left).toFixed(6)} left today of the daily spend cap $${daily.capUsd} ` +
            `(DAILY_SPEND_CAP_USD, per API key, or client address without keys, per UTC day; it resets at 00:00 UTC). Try again after midnight UTC, choose cheaper models, or ask the operator to raise the cap.`,
        );
      }
    }
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
      extra.inputTokens += summary.usage.inputTokens;
      extra.outputTokens += summary.usage.outputTokens;
      extra.costUsd = extra.costUsd === null || summary.costUsd === null ? null : addUsd(extra.costUsd, summary.costUsd);
      item.text = `[summary] ${summary.content}`;
    }
    return out;
  }
}

function contextWindow(client: ChatClient, config: ModelStepConfig, model: string): number {
  return config.context.limits[model] ?? client.prices.lookup(model)?.contextWindow ?? DEFAULT_CONTEXT_WINDOW;
}
