import { createHash, randomUUID } from "node:crypto";
import type { Request, RequestHandler, Response } from "express";
import { authenticate, bearerKey } from "./auth.js";
import { completionId, generateContent, requestDigest, topicWords } from "./content.js";
import { contextLengthExceeded, invalidApiKey, overloaded, rateLimited, sendError, serverError, SimulatorHttpError } from "./errors.js";
import { FAULT_HEADER, parseDirectives, rateFault, requestedFault, type SelectedFault } from "./faults.js";
import { latencyFor, sleep } from "./latency.js";
import { contextWindow, knownModel } from "./models.js";
import { parseChatRequest, type ChatRequest } from "./request.js";
import type { SimulatorState } from "./state.js";
import { SYSTEM_FINGERPRINT, usageOf, writeCompletionStream, writeMalformedStream, type FinishReason } from "./stream.js";
import { countPromptTokens, countTokens, truncateToTokens } from "./tokens.js";
import { instanceOf } from "./structured.js";
import { planToolCalls } from "./tools.js";

/** POST /v1/chat/completions: auth, validation, faults, context window, latency, then the completion. */
export function chatCompletionsHandler(state: SimulatorState): RequestHandler {
  return async (req, res) => {
    state.recordRequest();
    state.track(res, "inFlight");
    res.set("x-request-id", `req_${randomUUID().replaceAll("-", "")}`);
    const aborted = new AbortController();
    // Only a client that left early needs the abort (building its DOMException is not free).
    res.once("close", () => {
      if (!res.writableFinished) aborted.abort();
    });
    try {
      authenticate(req, state.config.apiKey);
      await complete(state, req, res, parseChatRequest(req.body), aborted.signal);
    } catch (err) {
      if (!(err instanceof SimulatorHttpError)) throw err;
      if (err.status === 401) state.recordRejection("unauthorized");
      else if (err.detail.code === "context_length_exceeded") state.recordRejection("contextLength");
      else state.recordRejection("invalidRequest");
      sendError(res, err);
    }
  };
}

async function complete(state: SimulatorState, req: Request, res: Response, request: ChatRequest, signal: AbortSignal) {
  const { model } = request;
  const config = state.config;
  const promptTokens = countPromptTokens(request.messages);
  const digest = requestDigest(model, request.messages);
  const id = completionId(digest);
  state.recordModelRequest(model);

  const requested = requestedFault({
    header: req.get(FAULT_HEADER),
    directives: config.directives ? parseDirectives(request.messages.map((m) => m.text)) : [],
    model,
    counters: state.directiveCounters,
  });
  if (requested) return injectFault(state, req, res, request, requested, { id, promptTokens });

  const limit = contextWindow(model, config.contextLimits);
  if (promptTokens > limit) throw contextLengthExceeded(limit, promptTokens);
  if (request.maxTokens !== undefined && promptTokens + request.maxTokens > limit) {
    throw contextLengthExceeded(limit, promptTokens, request.maxTokens);
  }

  const random = rateFault(config.faultRate, config.faultKinds, () => state.random());
  if (random) return injectFault(state, req, res, request, random, { id, promptTokens });

  const lastUser = request.messages.filter((m) => m.role === "user").at(-1)?.text ?? "";
  const topic = topicWords(lastUser).slice(0, 8);
  const toolCalls = planToolCalls({
    tools: request.tools,
    toolChoice: request.toolChoice,
    parallel: request.parallelToolCalls,
    messages: request.messages,
    topic,
    digest,
  });
  let content: string;
  let finishReason: FinishReason = "stop";
  if (toolCalls) {
    content = "";
    finishReason = "tool_calls";
  } else if (request.responseFormat.kind === "json_schema") {
    content = JSON.stringify(instanceOf(request.responseFormat.schema, { seed: digest, topic }));
  } else {
    const generated = generateContent({
      digest,
      messages: request.messages,
      minTokens: config.completionTokens.min,
      maxTokens: config.completionTokens.max,
    });
    content = request.responseFormat.kind === "json" ? JSON.stringify({ answer: generated.text }) : generated.text;
  }
  let completionTokens = toolCalls ? countTokens(JSON.stringify(toolCalls.map((c) => c.function))) : countTokens(content);
  if (!toolCalls && request.maxTokens !== undefined && completionTokens > request.maxTokens) {
    content = truncateToTokens(content, request.maxTokens);
    completionTokens = countTokens(content);
    finishReason = "length";
  }
  const usage = usageOf(promptTokens, completionTokens, {
    cachedTokens: cachedPromptTokens(state, model, request, promptTokens),
    reasoningTokens: knownModel(model)?.reasoning ? Math.round(completionTokens * (0.5 + (digest[2]! / 255) * 1.5)) : 0,
  });
  const created = Math.floor(Date.now() / 1000);
  const delayMs = latencyFor(config.latency, model, () => state.random());

  if (request.stream) {
    await writeCompletionStream(res, {
      id,
      created,
      model,
      content,
      toolCalls,
      finishReason,
      usage,
      includeUsage: request.includeUsage,
      delayMs,
      signal,
    });
  } else {
    if (!(await sleep(delayMs, signal))) return;
    res.json({
      id,
      object: "chat.completion",
      created,
      model,
      choices: [
        {
          index: 0,
          message: toolCalls
            ? { role: "assistant", content: null, tool_calls: toolCalls, refusal: null, annotations: [] }
            : { role: "assistant", content, refusal: null, annotations: [] },
          logprobs: null,
          finish_reason: finishReason,
        },
      ],
      usage,
      service_tier: "default",
      system_fingerprint: SYSTEM_FINGERPRINT,
    });
  }
  if (res.writableFinished || res.writableEnded) state.recordSuccess(model, request.stream, promptTokens, usage.completion_tokens);
}

/**
 * Prompt caching as OpenAI/Gemini/DeepSeek do it unasked: the leading system/developer messages, once a model
 * has seen them, are served from cache on the next request (`prompt_tokens_details.cached_tokens`).
 */
function cachedPromptTokens(state: SimulatorState, model: string, request: ChatRequest, promptTokens: number): number {
  if (!knownModel(model)?.promptCaching) return 0;
  const prefix: string[] = [];
  for (const m of request.messages) {
    if (m.role !== "system" && m.role !== "developer") break;
    prefix.push(m.text);
  }
  if (prefix.length === 0) return 0;
  const digest = createHash("sha256").update(JSON.stringify(prefix)).digest("hex");
  if (!state.prefixSeen(model, digest)) return 0;
  return Math.min(promptTokens, countPromptTokens(prefix.map((text) => ({ role: "system", text }))));
}

function injectFault(
  state: SimulatorState,
  req: Request,
  res: Response,
  request: ChatRequest,
  fault: SelectedFault,
  ctx: { id: string; promptTokens: number },
): void {
  const { model } = request;
  state.recordFault(model, fault.kind, fault.source);
  res.set("x-sim-fault-injected", `${fault.kind}; source=${fault.source}`);
  switch (fault.kind) {
    case "429":
      return sendError(res, rateLimited(model, state.config.retryAfterS));
    case "500":
      return sendError(res, serverError());
    case "503":
      return sendError(res, overloaded());
    case "401":
      return sendError(res, invalidApiKey(bearerKey(req) ?? ""));
    case "context_length": {
      const limit = contextWindow(model, state.config.contextLimits);
      return sendError(res, contextLengthExceeded(limit, limit + ctx.promptTokens));
    }
    case "malformed":
      if (request.stream) return writeMalformedStream(res, ctx.id);
      res
        .status(200)
        .type("application/json")
        .end(
          `{"id":"${ctx.id}","object":"chat.completion","model":${JSON.stringify(model)},"choices":[{"index":0,"message":{"role":"assistant","content":"The ev`,
        );
      return;
    case "invalid_output": {
      const content = "I am sorry, here is my answer in prose instead of the JSON you asked for.";
      const usage = usageOf(ctx.promptTokens, countTokens(content), { cachedTokens: 0, reasoningTokens: 0 });
      res.json({
        id: ctx.id,
        object: "chat.completion",
        created: Math.floor(Date.now() / 1000),
        model,
        choices: [{ index: 0, message: { role: "assistant", content, refusal: null }, logprobs: null, finish_reason: "stop" }],
        usage,
      });
      return;
    }
    case "hang":
      // Hold the connection without a timer: it ends when the client gives up or the server closes it.
      state.track(res, "hanging");
      return;
  }
}
