import { context, SpanKind, SpanStatusCode, trace, type Attributes, type Link, type Span } from "@opentelemetry/api";
import {
  ATTR_GEN_AI_AGENT_ID,
  ATTR_GEN_AI_AGENT_NAME,
  ATTR_GEN_AI_OPERATION_NAME,
  ATTR_GEN_AI_TOOL_CALL_ARGUMENTS,
  ATTR_GEN_AI_TOOL_CALL_ID,
  ATTR_GEN_AI_TOOL_CALL_RESULT,
  ATTR_GEN_AI_TOOL_NAME,
  ATTR_GEN_AI_TOOL_TYPE,
  ATTR_ERROR_TYPE,
} from "./attributes.js";
import { activeContentCaptureMode, redactSecrets } from "./content.js";
import { recordError } from "./errors.js";

const tracer = () => trace.getTracer("@tracelane/tracing/agent");

/** Tool arguments and results are cut here: a span attribute is not a payload store. */
const MAX_TOOL_CONTENT_CHARS = 8_192;

export interface AgentSpanInfo {
  /** gen_ai.agent.name, e.g. the stage: the span is `invoke_agent <name>`. */
  name: string;
  /** gen_ai.agent.id: this run of the agent (e.g. the job id). */
  id: string;
  attributes?: Attributes;
  /** Spans this one continues from (the fan-in: one link per child job). */
  links?: Link[];
}

/**
 * An agent's run as an INTERNAL span `invoke_agent <name>` (GenAI agent spans): the model calls and tool runs
 * it makes are its children. Errors are recorded once here and rethrown.
 */
export function withAgentSpan<T>(info: AgentSpanInfo, fn: (span: Span) => Promise<T>): Promise<T> {
  return runSpan(
    `invoke_agent ${info.name}`,
    {
      [ATTR_GEN_AI_OPERATION_NAME]: "invoke_agent",
      [ATTR_GEN_AI_AGENT_NAME]: info.name,
      [ATTR_GEN_AI_AGENT_ID]: info.id,
      ...info.attributes,
    },
    fn,
    info.links,
  );
}

export interface ToolSpanInfo {
  /** gen_ai.tool.name: the span is `execute_tool <name>`. */
  name: string;
  /** gen_ai.tool.call.id: the id the model gave the call. */
  callId: string;
  /** gen_ai.tool.type: `function` for a function the application runs. */
  type?: "function" | "extension" | "datastore";
  /** The call's arguments (JSON text), recorded only under content capture. */
  arguments?: string;
  attributes?: Attributes;
}

/**
 * A tool run that failed but still answers the model (e.g. "search failed: HTTP 503"), so the agent may
 * try again or give up: the span is an error with `type`, and the model gets `result`.
 */
export interface ToolFailure {
  failed: { type: string; message: string };
  result: string;
}

/**
 * One tool run as an INTERNAL span `execute_tool <name>`. Its arguments and its result (the string `fn`
 * resolves to) are recorded only when content capture allows (redacted under `redacted`). A ToolFailure
 * marks the span failed and resolves to its result.
 */
export function withToolSpan(info: ToolSpanInfo, fn: (span: Span) => Promise<string | ToolFailure>): Promise<string> {
  return runSpan(
    `execute_tool ${info.name}`,
    {
      [ATTR_GEN_AI_OPERATION_NAME]: "execute_tool",
      [ATTR_GEN_AI_TOOL_NAME]: info.name,
      [ATTR_GEN_AI_TOOL_CALL_ID]: info.callId,
      [ATTR_GEN_AI_TOOL_TYPE]: info.type ?? "function",
      ...info.attributes,
    },
    async (span) => {
      const args = info.arguments === undefined ? undefined : capturedContent(info.arguments);
      if (args !== undefined) span.setAttribute(ATTR_GEN_AI_TOOL_CALL_ARGUMENTS, args);
      const out = await fn(span);
      const result = typeof out === "string" ? out : out.result;
      const captured = capturedContent(result);
      if (captured !== undefined) span.setAttribute(ATTR_GEN_AI_TOOL_CALL_RESULT, captured);
      return typeof out === "string" ? { result } : { result, failed: out.failed };
    },
    undefined,
    (r) => r.failed,
  ).then((r) => r.result);
}

function capturedContent(text: string): string | undefined {
  const mode = activeContentCaptureMode();
  if (mode === "none") return undefined;
  const shown = mode === "redacted" ? redactSecrets(text) : text;
  return shown.length > MAX_TOOL_CONTENT_CHARS ? `${shown.slice(0, MAX_TOOL_CONTENT_CHARS)}…` : shown;
}

async function runSpan<T>(
  name: string,
  attributes: Attributes,
  fn: (span: Span) => Promise<T>,
  links?: Link[],
  failureOf?: (out: T) => ToolFailure["failed"] | undefined,
): Promise<T> {
  const span = tracer().startSpan(name, { kind: SpanKind.INTERNAL, attributes, ...(links?.length ? { links } : {}) });
  try {
    const out = await context.with(trace.setSpan(context.active(), span), () => fn(span));
    const failed = failureOf?.(out);
    if (failed) {
      span.setStatus({ code: SpanStatusCode.ERROR, message: failed.message });
      span.setAttribute(ATTR_ERROR_TYPE, failed.type);
    } else span.setStatus({ code: SpanStatusCode.OK });
    return out;
  } catch (err) {
    recordError(span, err);
    throw err;
  } finally {
    span.end();
  }
}
