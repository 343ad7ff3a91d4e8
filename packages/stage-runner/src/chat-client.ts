import OpenAI from "openai";
import type { PriceSource } from "@tracelane/pricing";
import { createKeepAliveFetch } from "@tracelane/runtime";
import {
  ATTR_GEN_AI_REQUEST_MAX_TOKENS,
  ATTR_GEN_AI_REQUEST_STREAM,
  ATTR_GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK,
  captureContent,
  createTracedFetch,
  recordChatResponse,
  withChatSpan,
} from "@tracelane/tracing";
import { CircuitOpenError, classifyModelError, ModelCallError, type ProviderRef } from "./errors.js";
import { inferProvider } from "./provider.js";
import { BrokenCircuitError, RetryBudgetExceededError, type CircuitStateName, type ModelPolicies } from "./resilience/model-policies.js";
import { retryAfterMs } from "./resilience/transient.js";
import { ATTR_CIRCUIT_STATE, ATTR_LLM_ATTEMPTS } from "@tracelane/pipeline";

export type ChatMessage =
  | { role: "system" | "user"; content: string }
  /** An assistant turn; `toolCalls` when it asked for tools (its content is then usually empty). */
  | { role: "assistant"; content: string; toolCalls?: ChatToolCall[] }
  /** A tool's result, answering the assistant's call `toolCallId`. */
  | { role: "tool"; content: string; toolCallId: string };

/** A function call the model asked for: `arguments` is its JSON text, as the model wrote it. */
export interface ChatToolCall {
  id: string;
  name: string;
  arguments: string;
}

/** A function the model may call (`tools: [{ type: "function", function }]`). */
export interface ChatTool {
  name: string;
  description: string;
  /** JSON Schema of the arguments. */
  parameters: Record<string, unknown>;
}

export interface ChatResult {
  content: string;
  requestModel: string;
  responseModel: string;
  responseId: string;
  finishReason: string;
  /** The tools the model asked for this turn (empty when it answered). */
  toolCalls: ChatToolCall[];
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
  /** Per HTTP attempt; retries are the policies' job. */
  timeoutMs: number;
  maxOutputTokens: number;
  fetch?: typeof fetch;
  /** Called before each resend inside a call (metrics). */
  onRetry?: (call: { model: string; provider: string }) => void;
}

export interface ChatOptions {
  attributes?: Record<string, string | number | boolean>;
  maxOutputTokens?: number;
  /** Functions the model may ask for; it answers with toolCalls, or with content once it needs none. */
  tools?: ChatTool[];
  /** Structured output: the answer is JSON valid against this schema (`response_format: json_schema`, strict). */
  responseFormat?: { name: string; schema: Record<string, unknown> };
  /**
   * Stream the answer (`stream: true` with usage) and hand each piece of text over as it arrives. `attempt`
   * counts from 1: a resend after a failure starts the text again, so a reader restarts on a new attempt.
   */
  onDelta?: (text: string, attempt: number) => void;
}

type Completion = Pick<OpenAI.Chat.Completions.ChatCompletion, "id" | "model" | "choices" | "usage"> & { _request_id?: string | null };

/** Our messages in the wire format of Chat Completions. */
function toWire(messages: ChatMessage[]): OpenAI.Chat.Completions.ChatCompletionMessageParam[] {
  return messages.map((m) => {
    if (m.role === "tool") return { role: "tool", content: m.content, tool_call_id: m.toolCallId };
    if (m.role === "assistant" && m.toolCalls?.length) {
      return {
        role: "assistant",
        content: m.content || null,
        tool_calls: m.toolCalls.map((c) => ({ id: c.id, type: "function" as const, function: { name: c.name, arguments: c.arguments } })),
      };
    }
    return { role: m.role, content: m.content };
  });
}

/** The openai client adds `_request_id` (the x-request-id response header) to every object it returns. */
const requestIdOf = (response: object): { providerRequestId?: string } => {
  const id = (response as { _request_id?: string | null })._request_id;
  return id ? { providerRequestId: id } : {};
};

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
    readonly prices: PriceSource,
    private readonly policies: ModelPolicies,
  ) {
    this.client = new OpenAI({
      baseURL: config.baseURL,
      apiKey: config.apiKey,
      timeout: config.timeoutMs,
      // Retries, Retry-After, the time budget and the circuit breaker live in ModelPolicies.
      maxRetries: 0,
      // Each HTTP attempt becomes a child span. The transport is undici's Agent, which drops idle
      // connections before the server's keep-alive timeout (see createKeepAliveFetch for why).
      fetch: config.fetch ?? createTracedFetch(createKeepAliveFetch()),
    });
    const url = new URL(config.baseURL);
    this.server = { address: url.hostname, ...(url.port ? { port: Number(url.port) } : {}) };
  }

  /**
   * One streamed request (`stream: true`, usage in the last chunk), read to its end and put back together as
   * the completion a non-streamed request answers: text, tool calls, finish reason, usage, request id.
   */
  private async streamed(
    body: OpenAI.Chat.Completions.ChatCompletionCreateParamsNonStreaming,
    signal: AbortSignal,
    onText: (text: string) => void,
  ): Promise<Completion> {
    const { data: stream, request_id } = await this.client.chat.completions
      .create({ ...body, stream: true, stream_options: { include_usage: true } }, { signal })
      .withResponse();
    let id = "";
    let responseModel = "";
    let content = "";
    let finishReason: OpenAI.Chat.Completions.ChatCompletion.Choice["finish_reason"] | undefined;
    let usage: OpenAI.Completions.CompletionUsage | undefined;
    const toolCalls: Array<{ id: string; name: string; arguments: string }> = [];
    for await (const chunk of stream) {
      id ||= chunk.id;
      responseModel ||= chunk.model;
      if (chunk.usage) usage = chunk.usage;
      const choice = chunk.choices?.[0];
      if (!choice) continue;
      if (choice.finish_reason) finishReason = choice.finish_reason;
      const text = choice.delta?.content;
      if (text) {
        content += text;
        onText(text);
      }
      for (const call of choice.delta?.tool_calls ?? []) {
        const slot = (toolCalls[call.index] ??= { id: "", name: "", arguments: "" });
        if (call.id) slot.id = call.id;
        if (call.function?.name) slot.name += call.function.name;
        if (call.function?.arguments) slot.arguments += call.function.arguments;
      }
    }
    const message: OpenAI.Chat.Completions.ChatCompletionMessage = {
      role: "assistant",
      content: toolCalls.length && !content ? null : content,
      refusal: null,
      ...(toolCalls.length
        ? {
            tool_calls: toolCalls.map((c) => ({ id: c.id, type: "function" as const, function: { name: c.name, arguments: c.arguments } })),
          }
        : {}),
    };
    return {
      id,
      model: responseModel,
      choices: finishReason ? [{ index: 0, message, finish_reason: finishReason, logprobs: null }] : [],
      ...(usage ? { usage } : {}),
      _request_id: request_id,
    };
  }

  /** The breaker key: one circuit per provider endpoint and model. */
  circuitKey(model: string): string {
    return `${this.config.baseURL}|${model}`;
  }

  /** gen_ai.provider.name of a call to `model`. */
  providerOf(model: string): string {
    return this.config.provider ?? inferProvider(model);
  }

  /** The circuit of every model this client has called, with its state now. */
  circuits(): Array<{ model: string; provider: string; serverAddress: string; state: CircuitStateName }> {
    const prefix = this.circuitKey("");
    return Object.entries(this.policies.states())
      .filter(([key]) => key.startsWith(prefix))
      .map(([key, state]) => {
        const model = key.slice(prefix.length);
        return { model, provider: this.providerOf(model), serverAddress: this.server.address, state };
      });
  }

  async chat(model: string, messages: ChatMessage[], opts: ChatOptions = {}): Promise<ChatResult> {
    const maxTokens = opts.maxOutputTokens ?? this.config.maxOutputTokens;
    const provider: ProviderRef = {
      baseURL: this.config.baseURL,
      model,
      apiKeyVar: this.config.apiKeyVar,
      modelVar: this.config.modelVar,
    };
    return withChatSpan(
      {
        model,
        provider: this.providerOf(model),
        serverAddress: this.server.address,
        ...(this.server.port ? { serverPort: this.server.port } : {}),
        attributes: { ...opts.attributes, [ATTR_GEN_AI_REQUEST_MAX_TOKENS]: maxTokens },
      },
      async (span) => {
        const started = performance.now();
        // A call is priced by the price in force when it started.
        const startedAtMs = Date.now();
        let completion: Completion;
        let attempts = 1;
        /** When the first piece of a streamed answer arrived (of the attempt that answered). */
        let firstChunkAt: number | undefined;
        const key = this.circuitKey(model);
        const body = {
          model,
          messages: toWire(messages),
          max_tokens: maxTokens,
          ...(opts.tools?.length
            ? { tools: opts.tools.map((t) => ({ type: "function" as const, function: t })), tool_choice: "auto" as const }
            : {}),
          ...(opts.responseFormat
            ? { response_format: { type: "json_schema" as const, json_schema: { ...opts.responseFormat, strict: true } } }
            : {}),
        };
        if (opts.onDelta) span.setAttribute(ATTR_GEN_AI_REQUEST_STREAM, true);
        try {
          completion = await this.policies.execute(
            key,
            async (signal) => {
              let res: Completion;
              if (opts.onDelta) {
                const attempt = attempts;
                const sent = performance.now();
                firstChunkAt = undefined;
                res = await this.streamed(body, signal, (text) => {
                  firstChunkAt ??= performance.now() - sent;
                  opts.onDelta!(text, attempt);
                });
              } else {
                res = await this.client.chat.completions.create(body, { signal });
              }
              const message = res?.choices?.[0]?.message;
              const answered = typeof message?.content === "string" || (message?.tool_calls?.length ?? 0) > 0;
              if (!message || !answered || !res.usage) {
                throw new ModelCallError(
                  provider,
                  "malformed_response",
                  "response has no choices[0].message content or tool_calls, or no usage",
                );
              }
              return res;
            },
            () => {
              attempts++;
              this.config.onRetry?.({ model, provider: this.providerOf(model) });
            },
          );
        } catch (err) {
          span.setAttributes({ [ATTR_LLM_ATTEMPTS]: attempts, [ATTR_CIRCUIT_STATE]: this.policies.state(key) });
          if (err instanceof BrokenCircuitError) throw new CircuitOpenError(provider, this.policies.halfOpensAt(key) ?? Date.now());
          if (err instanceof RetryBudgetExceededError) throw new ModelCallError(provider, "retry_budget_exhausted", err.message);
          const classified = classifyModelError(err, provider);
          if (classified instanceof ModelCallError && classified.type === "rate_limited") {
            classified.retryAfterMs = retryAfterMs(err);
          }
          throw classified;
        }
        span.setAttributes({ [ATTR_LLM_ATTEMPTS]: attempts, [ATTR_CIRCUIT_STATE]: this.policies.state(key) });
        // Seconds, as the GenAI conventions measure durations: how long the reader waited for the first words.
        if (firstChunkAt !== undefined) span.setAttribute(ATTR_GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK, firstChunkAt / 1000);
        const latencyMs = Math.round(performance.now() - started);
        const choice = completion.choices[0]!;
        const usage = {
          inputTokens: completion.usage!.prompt_tokens,
          outputTokens: completion.usage!.completion_tokens,
          cachedInputTokens: completion.usage!.prompt_tokens_details?.cached_tokens ?? 0,
        };
        const responseModel = completion.model || model;
        const priced = this.prices.lookup(responseModel) ? responseModel : model;
        const cost = this.prices.cost(priced, usage, startedAtMs);
        const toolCalls: ChatToolCall[] = (choice.message.tool_calls ?? []).flatMap((c) =>
          c.type === "function" ? [{ id: c.id, name: c.function.name, arguments: c.function.arguments }] : [],
        );
        const content = choice.message.content ?? "";
        captureContent(span, {
          input: messages.map((m) => ({ role: m.role, content: m.content })),
          output: content || JSON.stringify(toolCalls.map((c) => ({ name: c.name, arguments: c.arguments }))),
          finishReason: choice.finish_reason ?? "unknown",
        });
        recordChatResponse(span, {
          responseModel,
          responseId: completion.id,
          finishReasons: [choice.finish_reason ?? "unknown"],
          inputTokens: usage.inputTokens,
          outputTokens: usage.outputTokens,
          cachedInputTokens: usage.cachedInputTokens,
          reasoningTokens: completion.usage!.completion_tokens_details?.reasoning_tokens ?? 0,
          // The provider's x-request-id, for support tickets and its own logs.
          ...requestIdOf(completion),
          costUsd: cost.costUsd,
          ...(cost.priced ? { priceVersion: cost.version } : {}),
        });
        return {
          content,
          requestModel: model,
          responseModel,
          responseId: completion.id,
          finishReason: choice.finish_reason ?? "unknown",
          toolCalls,
          usage,
          costUsd: cost.costUsd,
          latencyMs,
        };
      },
    );
  }
}
