import type { Response } from "express";

/** The `error` object of an OpenAI error response. */
export interface OpenAIErrorDetail {
  message: string;
  type: string;
  param: string | null;
  code: string | null;
}

/** An HTTP error the simulator answers with an OpenAI-shaped body. */
export class SimulatorHttpError extends Error {
  override readonly name = "SimulatorHttpError";
  constructor(
    readonly status: number,
    readonly detail: OpenAIErrorDetail,
    readonly headers: Readonly<Record<string, string>> = {},
  ) {
    super(detail.message);
  }
}

export function sendError(res: Response, err: SimulatorHttpError): void {
  res.status(err.status).set(err.headers).json({ error: err.detail });
}

/** `sk-...abcd`: enough to recognise a key, never the key itself. */
export function maskApiKey(key: string): string {
  return key.length >= 12 ? `${key.slice(0, 3)}...${key.slice(-4)}` : "***";
}

export function invalidRequest(message: string, param: string | null = null, code: string | null = null): SimulatorHttpError {
  return new SimulatorHttpError(400, { message, type: "invalid_request_error", param, code });
}

export function invalidJsonBody(): SimulatorHttpError {
  return invalidRequest(
    "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly. " +
      "The OpenAI API expects a JSON payload, but what was sent was not valid JSON.)",
  );
}

export function bodyTooLarge(): SimulatorHttpError {
  return new SimulatorHttpError(413, {
    message: "The request body is too large.",
    type: "invalid_request_error",
    param: null,
    code: "request_too_large",
  });
}

export function missingApiKey(): SimulatorHttpError {
  return new SimulatorHttpError(401, {
    message:
      "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth " +
      "(i.e. Authorization: Bearer YOUR_KEY).",
    type: "invalid_request_error",
    param: null,
    code: null,
  });
}

export function invalidApiKey(presented: string): SimulatorHttpError {
  return new SimulatorHttpError(401, {
    message: `Incorrect API key provided: ${maskApiKey(presented)}. Use the key the simulator was started with (LLM_SIM_API_KEY).`,
    type: "invalid_request_error",
    param: null,
    code: "invalid_api_key",
  });
}

export function rateLimited(model: string, retryAfterS: number): SimulatorHttpError {
  const retryAfterMs = Math.round(retryAfterS * 1000);
  return new SimulatorHttpError(
    429,
    {
      message:
        `Rate limit reached for ${model} on requests per min (RPM): Limit 500, Used 500, Requested 1. ` +
        `Please try again in ${retryAfterMs >= 1000 ? `${retryAfterS}s` : `${retryAfterMs}ms`}.`,
      type: "requests",
      param: null,
      code: "rate_limit_exceeded",
    },
    {
      "retry-after": String(Math.ceil(retryAfterS)),
      "retry-after-ms": String(retryAfterMs),
      "x-ratelimit-limit-requests": "500",
      "x-ratelimit-remaining-requests": "0",
      "x-ratelimit-reset-requests": `${retryAfterMs}ms`,
    },
  );
}

export function serverError(): SimulatorHttpError {
  return new SimulatorHttpError(500, {
    message: "The server had an error while processing your request. Sorry about that!",
    type: "server_error",
    param: null,
    code: null,
  });
}

export function overloaded(): SimulatorHttpError {
  return new SimulatorHttpError(503, {
    message: "The server is overloaded or not ready yet.",
    type: "server_error",
    param: null,
    code: null,
  });
}

/** OpenAI's wording for a prompt (plus requested completion) over the model's window. */
export function contextLengthExceeded(limit: number, promptTokens: number, completionTokens?: number): SimulatorHttpError {
  const message =
    completionTokens === undefined
      ? `This model's maximum context length is ${limit} tokens. However, your messages resulted in ${promptTokens} tokens. ` +
        "Please reduce the length of the messages."
      : `This model's maximum context length is ${limit} tokens. However, you requested ${promptTokens + completionTokens} tokens ` +
        `(${promptTokens} in the messages, ${completionTokens} in the completion). ` +
        "Please reduce the length of the messages or completion.";
  return invalidRequest(message, "messages", "context_length_exceeded");
}

export function notFound(method: string, path: string): SimulatorHttpError {
  return new SimulatorHttpError(404, {
    message: `Invalid URL (${method} ${path})`,
    type: "invalid_request_error",
    param: null,
    code: null,
  });
}

export function modelNotFound(model: string): SimulatorHttpError {
  return new SimulatorHttpError(404, {
    message: `The model '${model}' does not exist or you do not have access to it.`,
    type: "invalid_request_error",
    param: null,
    code: "model_not_found",
  });
}
