import OpenAI from "openai";
import type { PriceTable } from "@tracelane/pricing";
import { captureContent, createTracedFetch, recordChatResponse, withChatSpan } from "@tracelane/tracing";
import { classifyModelError, ModelCallError, type ProviderRef } from "./errors.js";
import { inferProvider } from "./provider.js";

export interface ChatMessage {
  role: "system" | "user" | "assistant";
  content: string;
}

export interface ChatResult {
  content: string;
  requestModel: string;
  responseModel: string;
  responseId: string;
  finishReason: string;
  usage: { inputTokens: number; outputTokens: number; cachedInputTokens: number };
  /** null when the model is not in the price table. */
  costUsd: number | null;
  latencyMs: number;
}

export interface ChatClientConfig {
  baseURL: string;
  apiKey: string;
  apiKeyVar: string;
  modelVar: string;
  provider?: string | undefined;
  timeoutMs: number;
  maxRetries: number;
  maxOutputTokens: number;
  fetch?: typeof fetch;
}

/**
 * One OpenAI-compatible endpoint. Every call is a CLIENT span `chat <model>`
 * with GenAI attributes and its computed cost; the openai client's own retries
 * (429 with Retry-After, 5xx, timeouts) happen inside that span.
 */
export class ChatClient {
  private readonly client: OpenAI;
  private readonly server: { address: string; port?: number };

  constructor(
    private readonly config: ChatClientConfig,
    private readonly prices: PriceTable,
  ) {
    this.client = new OpenAI({
      baseURL: config.baseURL,
      apiKey: config.apiKey,
      timeout: config.timeoutMs,
      maxRetries: config.maxRetries,
      // Each HTTP attempt (the client retries 429/5xx/timeouts itself) becomes a child span.
      fetch: config.fetch ?? createTracedFetch(),
    });
    const url = new URL(config.baseURL);
    this.server = { address: url.hostname, ...(url.port ? { port: Number(url.port) } : {}) };
  }

  async chat(model: string, messages: ChatMessage[], attributes: Record<string, string> = {}): Promise<ChatResult> {
    const provider: ProviderRef = {
      baseURL: this.config.baseURL,
      model,
      apiKeyVar: this.config.apiKeyVar,
      modelVar: this.config.modelVar,
    };
    return withChatSpan(
      {
        model,
        provider: this.config.provider ?? inferProvider(model),
        serverAddress: this.server.address,
        ...(this.server.port ? { serverPort: this.server.port } : {}),
        attributes: { ...attributes, "gen_ai.request.max_tokens": this.config.maxOutputTokens },
      },
      async (span) => {
        const started = performance.now();
        let completion: OpenAI.Chat.Completions.ChatCompletion;
        try {
          completion = await this.client.chat.completions.create({
            model,
            messages,
            max_tokens: this.config.maxOutputTokens,
          });
        } catch (err) {
          throw classifyModelError(err, provider);
        }
        const latencyMs = Math.round(performance.now() - started);
        const choice = completion?.choices?.[0];
        if (!choice || typeof choice.message?.content !== "string" || !completion.usage) {
          throw new ModelCallError(provider, "malformed_response", "response has no choices[0].message.content or usage");
        }
        const usage = {
          inputTokens: completion.usage.prompt_tokens,
          outputTokens: completion.usage.completion_tokens,
          cachedInputTokens: completion.usage.prompt_tokens_details?.cached_tokens ?? 0,
        };
        const responseModel = completion.model || model;
        const priced = this.prices.lookup(responseModel) ? responseModel : model;
        const cost = this.prices.cost(priced, usage);
        captureContent(span, { input: messages, output: choice.message.content, finishReason: choice.finish_reason ?? "unknown" });
        recordChatResponse(span, {
          responseModel,
          responseId: completion.id,
          finishReasons: [choice.finish_reason ?? "unknown"],
          inputTokens: usage.inputTokens,
          outputTokens: usage.outputTokens,
          cachedInputTokens: usage.cachedInputTokens,
          costUsd: cost.costUsd,
        });
        return {
          content: choice.message.content,
          requestModel: model,
          responseModel,
          responseId: completion.id,
          finishReason: choice.finish_reason ?? "unknown",
          usage,
          costUsd: cost.costUsd,
          latencyMs,
        };
      },
    );
  }
}
