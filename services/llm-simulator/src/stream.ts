import type { Response } from "express";
import { FIRST_CHUNK_SHARE, sleep } from "./latency.js";
import type { ToolCall } from "./tools.js";

export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  prompt_tokens_details: { cached_tokens: number; audio_tokens: number };
  completion_tokens_details: {
    reasoning_tokens: number;
    audio_tokens: number;
    accepted_prediction_tokens: number;
    rejected_prediction_tokens: number;
  };
}

/**
 * OpenAI's usage object. `completionTokens` is the visible output; `reasoningTokens` are counted into
 * completion_tokens as OpenAI does; `cachedTokens` are part of prompt_tokens.
 */
export function usageOf(
  promptTokens: number,
  completionTokens: number,
  details: { cachedTokens?: number; reasoningTokens?: number } = {},
): Usage {
  const reasoning = details.reasoningTokens ?? 0;
  return {
    prompt_tokens: promptTokens,
    completion_tokens: completionTokens + reasoning,
    total_tokens: promptTokens + completionTokens + reasoning,
    prompt_tokens_details: { cached_tokens: details.cachedTokens ?? 0, audio_tokens: 0 },
    completion_tokens_details: {
      reasoning_tokens: reasoning,
      audio_tokens: 0,
      accepted_prediction_tokens: 0,
      rejected_prediction_tokens: 0,
    },
  };
}

export type FinishReason = "stop" | "length" | "tool_calls";

export const SYSTEM_FINGERPRINT = "fp_llmsim";

export interface StreamPlan {
  id: string;
  created: number;
  model: string;
  content: string;
  /** Tool calls instead of content: sent as one delta, the way OpenAI streams short calls. */
  toolCalls?: readonly ToolCall[] | undefined;
  finishReason: FinishReason;
  usage: Usage;
  /** stream_options.include_usage: every chunk carries `usage: null`, then a final chunk carries the usage. */
  includeUsage: boolean;
  /** Total latency: part before the first chunk, the rest spread over the content chunks. */
  delayMs: number;
  signal: AbortSignal;
}

const WORDS_PER_CHUNK = 3;

/** Split text into chunks of a few words; joined, they give back the text exactly. */
export function splitForStreaming(content: string): string[] {
  const words = content.match(/\S+\s*|\s+/g) ?? [];
  const chunks: string[] = [];
  for (let i = 0; i < words.length; i += WORDS_PER_CHUNK) chunks.push(words.slice(i, i + WORDS_PER_CHUNK).join(""));
  return chunks;
}

function startEventStream(res: Response): void {
  res.status(200).set({
    "content-type": "text/event-stream; charset=utf-8",
    "cache-control": "no-cache",
    connection: "keep-alive",
  });
  res.flushHeaders();
}

const sendEvent = (res: Response, data: unknown) => res.write(`data: ${JSON.stringify(data)}\n\n`);

/** Write a chat.completion.chunk SSE stream the way OpenAI does, ending with `data: [DONE]`. */
export async function writeCompletionStream(res: Response, plan: StreamPlan): Promise<void> {
  const chunks = splitForStreaming(plan.content);
  const firstDelay = Math.round(plan.delayMs * FIRST_CHUNK_SHARE);
  const perChunk = chunks.length > 0 ? (plan.delayMs - firstDelay) / chunks.length : 0;
  if (!(await sleep(firstDelay, plan.signal))) return;

  const chunk = (choices: unknown[]) => ({
    id: plan.id,
    object: "chat.completion.chunk",
    created: plan.created,
    model: plan.model,
    system_fingerprint: SYSTEM_FINGERPRINT,
    choices,
    ...(plan.includeUsage ? { usage: null } : {}),
  });
  const choice = (delta: object, finishReason: FinishReason | null = null) => ({
    index: 0,
    delta,
    logprobs: null,
    finish_reason: finishReason,
  });

  startEventStream(res);
  sendEvent(res, chunk([choice({ role: "assistant", content: plan.toolCalls ? null : "", refusal: null })]));
  if (plan.toolCalls) {
    sendEvent(res, chunk([choice({ tool_calls: plan.toolCalls.map((call, index) => ({ index, ...call })) })]));
  }
  let owed = 0;
  for (const text of chunks) {
    owed += perChunk;
    if (owed >= 1) {
      const wait = Math.floor(owed);
      owed -= wait;
      if (!(await sleep(wait, plan.signal))) return;
    }
    sendEvent(res, chunk([choice({ content: text })]));
  }
  sendEvent(res, chunk([choice({}, plan.finishReason)]));
  if (plan.includeUsage) sendEvent(res, { ...chunk([]), usage: plan.usage });
  res.end("data: [DONE]\n\n");
}

/** A 200 event stream whose first event is cut off mid-JSON. */
export function writeMalformedStream(res: Response, id: string): void {
  startEventStream(res);
  res.end(`data: {"id":"${id}","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"The ev\n\ndata: [DONE]\n\n`);
}
