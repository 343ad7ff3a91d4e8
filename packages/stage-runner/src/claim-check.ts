import { addCostUsd } from "@tracelane/pricing";
import {
  ATTR_CLAIM_INDEX,
  ATTR_CLAIM_VERDICT,
  ATTR_OUTPUT_RETRY_AFTER_INVALID,
  ATTR_RESEARCH_ID,
  ATTR_STAGE,
  ATTR_TOOL_TURN,
} from "@tracelane/pipeline";
import { addUsage, type ResearchView, type TokenUsage } from "@tracelane/research-store";
import { withAgentSpan, withToolSpan } from "@tracelane/tracing";
import { checkCallBudget, type DailySpend } from "./budget.js";
import type { ChatClient, ChatMessage, ChatResult } from "./chat-client.js";
import { countMessageTokens } from "./context/tokens.js";
import { ClaimCancelledError, InvalidModelOutputError, ToolTurnsExhaustedError } from "./errors.js";
import type { ClaimCheckDefinition, ClaimTool, ClaimVerdictAnswer } from "./stage-definition.js";
import { parseAnswer } from "./structured-answer.js";

export interface ClaimCheckConfig {
  maxOutputTokens: number;
  /** MAX_TOOL_TURNS: model turns that may ask for tools; the turn after them is offered none. */
  maxToolTurns: number;
  allowUnpricedModels?: boolean | undefined;
}

/** What one attempt at a claim spent, whether it reached a verdict or not. */
export interface ClaimSpend {
  usage: TokenUsage;
  /** null once any call was unpriced. */
  costUsd: number | null;
  modelCalls: number;
  toolCalls: number;
}

export interface ClaimCheckResult extends ClaimSpend {
  answer: ClaimVerdictAnswer;
  model: string;
  latencyMs: number;
}

/** A claim attempt that failed after paying for some calls: the spend travels with the error. */
export class ClaimAttemptError extends Error {
  override readonly name = "ClaimAttemptError";
  constructor(
    override readonly cause: unknown,
    readonly spend: ClaimSpend,
  ) {
    super(cause instanceof Error ? cause.message : String(cause));
  }
}

/**
 * Check one claim with the stage's tools, in an `invoke_agent <stage>` span: each turn the model may ask for
 * tools (several at once: they run in parallel, each in an `execute_tool` span under this agent), gets their
 * results and goes on; after MAX_TOOL_TURNS it is offered no tools, so it answers. The answer must match the
 * verdict schema (one more ask if it does not). Budget and daily cap are checked before every call.
 */
export async function checkClaim(input: {
  definition: ClaimCheckDefinition;
  tools: ClaimTool[];
  client: ChatClient;
  config: ClaimCheckConfig;
  view: ResearchView<string, string>;
  stage: string;
  jobId: string;
  index: number;
  claim: string;
  model: string;
  daily?: DailySpend | undefined;
  /** Asked before every turn after the first: false (the research was cancelled) stops the check there. */
  stillWanted?: () => Promise<boolean>;
}): Promise<ClaimCheckResult> {
  const { definition, client, config, view, stage, index, model } = input;
  const started = performance.now();
  const spend: ClaimSpend = { usage: addUsage(undefined, undefined), costUsd: 0, modelCalls: 0, toolCalls: 0 };
  const attributes = { [ATTR_STAGE]: stage, [ATTR_RESEARCH_ID]: view.id, [ATTR_CLAIM_INDEX]: index };
  const byName = new Map(input.tools.map((t) => [t.definition.name, t]));
  const responseFormat = { name: definition.verdict.name, schema: definition.verdict.jsonSchema({ maxClaims: 0 }) };

  const messages: ChatMessage[] = [
    { role: "system", content: definition.system },
    { role: "user", content: `Research question:\n${view.query}\n\nClaim to check:\n${input.claim}` },
  ];

  const chat = async (turn: number, offerTools: boolean, extra: Record<string, boolean> = {}): Promise<ChatResult> => {
    const spent = spend.costUsd ?? 0;
    if (view.options.maxCostUsd !== undefined || input.daily)
      checkCallBudget({
        stage,
        model,
        prices: client.prices,
        inputTokens: countMessageTokens(messages),
        maxOutputTokens: config.maxOutputTokens,
        allowUnpricedModels: config.allowUnpricedModels,
        maxCostUsd: view.options.maxCostUsd,
        spentUsd: view.totals.costUsd + spent,
        ...(input.daily ? { daily: { capUsd: input.daily.capUsd, leftUsd: input.daily.leftUsd - spent } } : {}),
      });
    const result = await client.chat(model, messages, {
      attributes: { ...attributes, [ATTR_TOOL_TURN]: turn, ...extra },
      responseFormat,
      ...(offerTools && input.tools.length ? { tools: input.tools.map((t) => t.definition) } : {}),
    });
    spend.modelCalls++;
    spend.usage = addUsage(spend.usage, result.usage);
    spend.costUsd = addCostUsd(spend.costUsd, result.costUsd);
    return result;
  };

  try {
    return await withAgentSpan({ name: stage, id: input.jobId, attributes }, async (agentSpan) => {
      let invalidOnce = false;
      for (let turn = 1; turn <= config.maxToolTurns + 1; turn++) {
        if (spend.modelCalls > 0 && input.stillWanted && !(await input.stillWanted())) {
          throw new ClaimCancelledError(`claim ${index}: the research was cancelled; stopped after ${spend.modelCalls} model calls`);
        }
        const result = await chat(turn, turn <= config.maxToolTurns, invalidOnce ? { [ATTR_OUTPUT_RETRY_AFTER_INVALID]: true } : {});
        if (result.toolCalls.length > 0) {
          messages.push({ role: "assistant", content: result.content, toolCalls: result.toolCalls });
          // Every call of the turn at once; results go back in the order the model asked for them.
          const outputs = await Promise.all(
            result.toolCalls.map((call) =>
              withToolSpan({ name: call.name, callId: call.id, arguments: call.arguments, attributes }, async () => {
                const tool = byName.get(call.name);
                if (!tool) {
                  const message = `unknown tool "${call.name}"; the tools are ${[...byName.keys()].join(", ")}`;
                  return { failed: { type: "unknown_tool", message }, result: JSON.stringify({ error: message }) };
                }
                let args: unknown;
                try {
                  args = JSON.parse(call.arguments);
                } catch {
                  const message = "arguments are not JSON";
                  return { failed: { type: "invalid_tool_arguments", message }, result: JSON.stringify({ error: message }) };
                }
                return tool.run(args);
              }),
            ),
          );
          spend.toolCalls += outputs.length;
          result.toolCalls.forEach((call, i) => messages.push({ role: "tool", toolCallId: call.id, content: outputs[i]! }));
          continue;
        }
        const parsed = parseAnswer(definition.verdict, result.content);
        if (parsed.ok) {
          agentSpan.setAttribute(ATTR_CLAIM_VERDICT, parsed.value.verdict);
          return { ...spend, answer: parsed.value, model: result.responseModel, latencyMs: Math.round(performance.now() - started) };
        }
        if (invalidOnce) {
          throw new InvalidModelOutputError(
            `${stage}: ${result.responseModel} answered claim ${index} twice with a verdict that does not match the schema: ${parsed.reason}.`,
          );
        }
        invalidOnce = true;
        turn--; // the same turn again: an invalid answer does not spend a tool turn
      }
      throw new ToolTurnsExhaustedError(
        `${stage}: claim ${index} got no verdict within ${config.maxToolTurns} tool turns (MAX_TOOL_TURNS) and a final turn without tools.`,
      );
    });
  } catch (err) {
    throw new ClaimAttemptError(err, spend);
  }
}
