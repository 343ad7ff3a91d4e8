import { z } from "zod";
import type { PromptMessage } from "./content.js";
import { invalidJsonBody, invalidRequest, type SimulatorHttpError } from "./errors.js";

const ContentPartSchema = z
  .looseObject({ type: z.string(), text: z.string().optional() })
  .refine((part) => part.type !== "text" || typeof part.text === "string", {
    message: "a text part needs a 'text' string",
    path: ["text"],
  });

const MessageSchema = z.looseObject({
  role: z.enum(["system", "developer", "user", "assistant", "tool", "function"]),
  content: z.union([z.string(), z.array(ContentPartSchema), z.null()]).optional(),
  name: z.string().optional(),
});

const TokenLimitSchema = z.number().int().min(1).nullable().optional();

/** The part of the Chat Completions body the simulator reads; other fields are accepted and ignored. */
export const ChatCompletionRequestSchema = z
  .looseObject({
    model: z.string().min(1),
    messages: z.array(MessageSchema).min(1),
    stream: z.boolean().nullable().optional(),
    stream_options: z.looseObject({ include_usage: z.boolean().optional() }).nullable().optional(),
    max_tokens: TokenLimitSchema,
    max_completion_tokens: TokenLimitSchema,
    n: z.number().int().min(1).max(1, "the simulator generates a single choice; n must be 1").nullable().optional(),
    temperature: z.number().min(0).max(2).nullable().optional(),
    top_p: z.number().min(0).max(1).nullable().optional(),
  })
  .refine((body) => body.stream_options == null || body.stream === true, {
    message: "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
    path: ["stream_options"],
  });

export interface ChatRequest {
  model: string;
  messages: PromptMessage[];
  stream: boolean;
  includeUsage: boolean;
  /** max_completion_tokens, else max_tokens. */
  maxTokens: number | undefined;
}

type RawMessage = z.infer<typeof MessageSchema>;

function messageText(content: RawMessage["content"]): string {
  if (typeof content === "string") return content;
  if (!content) return "";
  return content.flatMap((part) => (part.type === "text" && typeof part.text === "string" ? [part.text] : [])).join("\n");
}

/** `messages[0].content` from a zod path. */
function paramName(path: readonly PropertyKey[]): string | null {
  if (path.length === 0) return null;
  return path.reduce<string>((acc, key) => (typeof key === "number" ? `${acc}[${key}]` : acc ? `${acc}.${String(key)}` : String(key)), "");
}

function valueAt(body: unknown, path: readonly PropertyKey[]): unknown {
  let value = body;
  for (const key of path) {
    if (value === null || typeof value !== "object") return undefined;
    value = (value as Record<PropertyKey, unknown>)[key];
  }
  return value;
}

function toHttpError(body: unknown, issue: z.core.$ZodIssue): SimulatorHttpError {
  const param = paramName(issue.path);
  if (issue.code === "invalid_type" && valueAt(body, issue.path) === undefined) {
    return invalidRequest(`Missing required parameter: '${param}'.`, param, "missing_required_parameter");
  }
  if (issue.code === "invalid_type") {
    return invalidRequest(`Invalid type for '${param}': ${issue.message}.`, param, "invalid_type");
  }
  if (issue.code === "custom") return invalidRequest(issue.message, param, "invalid_value");
  return invalidRequest(`Invalid value for '${param}': ${issue.message}.`, param, "invalid_value");
}

/** Validate a Chat Completions body, or throw the 400 OpenAI would send. */
export function parseChatRequest(body: unknown): ChatRequest {
  if (body === undefined) throw invalidJsonBody();
  if (body === null || typeof body !== "object" || Array.isArray(body)) {
    throw invalidRequest("The request body must be a JSON object.", null, "invalid_type");
  }
  const result = ChatCompletionRequestSchema.safeParse(body);
  if (!result.success) throw toHttpError(body, result.error.issues[0]!);
  const data = result.data;
  return {
    model: data.model,
    messages: data.messages.map((m) => ({ role: m.role, text: messageText(m.content) })),
    stream: data.stream === true,
    includeUsage: data.stream_options?.include_usage === true,
    maxTokens: data.max_completion_tokens ?? data.max_tokens ?? undefined,
  };
}
