import { z } from "zod";
import type { PromptMessage } from "./content.js";
import type { JsonSchema } from "./structured.js";
import type { ToolChoice, ToolSpec } from "./tools.js";
import { invalidJsonBody, invalidRequest, type SimulatorHttpError } from "./errors.js";

const ContentPartSchema = z
  .looseObject({ type: z.string(), text: z.string().optional() })
  .refine((part) => part.type !== "text" || typeof part.text === "string", {
    message: "a text part needs a 'text' string",
    path: ["text"],
  });

const ToolCallSchema = z.looseObject({
  id: z.string().min(1),
  type: z.literal("function"),
  function: z.looseObject({ name: z.string().min(1), arguments: z.string() }),
});

const MessageSchema = z.looseObject({
  role: z.enum(["system", "developer", "user", "assistant", "tool", "function"]),
  content: z.union([z.string(), z.array(ContentPartSchema), z.null()]).optional(),
  name: z.string().optional(),
  tool_calls: z.array(ToolCallSchema).optional(),
  tool_call_id: z.string().optional(),
});

const JsonSchemaSchema = z.record(z.string(), z.unknown());

const ToolSchema = z.looseObject({
  type: z.literal("function"),
  function: z.looseObject({
    name: z.string().regex(/^[a-zA-Z0-9_-]{1,64}$/, "a function name is 1-64 of a-z, A-Z, 0-9, _ and -"),
    description: z.string().optional(),
    parameters: JsonSchemaSchema.optional(),
  }),
});

const ToolChoiceSchema = z.union([
  z.enum(["none", "auto", "required"]),
  z.looseObject({ type: z.literal("function"), function: z.looseObject({ name: z.string() }) }),
]);

const ResponseFormatSchema = z.union([
  z.looseObject({ type: z.literal("text") }),
  z.looseObject({ type: z.literal("json_object") }),
  z.looseObject({
    type: z.literal("json_schema"),
    json_schema: z.looseObject({ name: z.string().min(1), schema: JsonSchemaSchema.optional(), strict: z.boolean().nullable().optional() }),
  }),
]);

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
    tools: z.array(ToolSchema).max(128).optional(),
    tool_choice: ToolChoiceSchema.optional(),
    parallel_tool_calls: z.boolean().optional(),
    response_format: ResponseFormatSchema.optional(),
  })
  .refine((body) => body.stream_options == null || body.stream === true, {
    message: "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
    path: ["stream_options"],
  });

export interface ChatRequest {
  model: string;
  messages: PromptMessage[];
  tools: ToolSpec[];
  toolChoice: ToolChoice;
  parallelToolCalls: boolean;
  /** response_format json_schema's schema (structured output), or "json" for json_object. */
  responseFormat: { kind: "text" } | { kind: "json" } | { kind: "json_schema"; schema: JsonSchema };
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

/**
 * A `tool` message must answer a tool call of the assistant message before it, and every tool call must be
 * answered before the conversation goes on (OpenAI's rule; a client that breaks it gets this 400).
 */
function checkToolMessages(messages: readonly RawMessage[]): void {
  let open = new Set<string>();
  messages.forEach((m, i) => {
    if (m.role === "tool") {
      if (!m.tool_call_id || !open.has(m.tool_call_id)) {
        throw invalidRequest(
          `Invalid parameter: messages with role 'tool' must be a response to a preceding message with 'tool_calls' (messages[${i}].tool_call_id ${m.tool_call_id ? `'${m.tool_call_id}' matches no open call` : "is missing"}).`,
          `messages[${i}].tool_call_id`,
          "invalid_value",
        );
      }
      open.delete(m.tool_call_id);
      return;
    }
    if (open.size > 0) {
      throw invalidRequest(
        `An assistant message with 'tool_calls' must be followed by tool messages responding to each 'tool_call_id'. The following tool_call_ids did not have response messages: ${[...open].join(", ")}`,
        `messages[${i}].role`,
        "invalid_value",
      );
    }
    open = new Set(m.role === "assistant" ? (m.tool_calls ?? []).map((c) => c.id) : []);
  });
  if (open.size > 0) {
    throw invalidRequest(
      `An assistant message with 'tool_calls' must be followed by tool messages responding to each 'tool_call_id'. The following tool_call_ids did not have response messages: ${[...open].join(", ")}`,
      `messages[${messages.length - 1}]`,
      "invalid_value",
    );
  }
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
  checkToolMessages(data.messages);
  const tools = (data.tools ?? []).map((t) => ({
    name: t.function.name,
    ...(t.function.parameters ? { parameters: t.function.parameters as JsonSchema } : {}),
  }));
  const choice = data.tool_choice;
  const toolChoice: ToolChoice =
    choice === undefined ? (tools.length ? "auto" : "none") : typeof choice === "string" ? choice : { name: choice.function.name };
  if (typeof toolChoice === "object" && !tools.some((t) => t.name === toolChoice.name)) {
    throw invalidRequest(
      `Invalid value for 'tool_choice': no function named '${toolChoice.name}' in 'tools'.`,
      "tool_choice",
      "invalid_value",
    );
  }
  if (toolChoice !== "none" && toolChoice !== "auto" && tools.length === 0) {
    throw invalidRequest(
      "Invalid value for 'tool_choice': 'tool_choice' is only allowed when 'tools' are specified.",
      "tool_choice",
      "invalid_value",
    );
  }
  const format = data.response_format;
  return {
    model: data.model,
    messages: data.messages.map((m) => ({ role: m.role, text: messageText(m.content) })),
    tools,
    toolChoice,
    parallelToolCalls: data.parallel_tool_calls !== false,
    responseFormat:
      format?.type === "json_schema"
        ? { kind: "json_schema", schema: (format.json_schema.schema ?? {}) as JsonSchema }
        : format?.type === "json_object"
          ? { kind: "json" }
          : { kind: "text" },
    stream: data.stream === true,
    includeUsage: data.stream_options?.include_usage === true,
    maxTokens: data.max_completion_tokens ?? data.max_tokens ?? undefined,
  };
}
