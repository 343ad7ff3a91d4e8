/** What these helpers read of a research (ResearchView): each stage's row and, for a fan-out stage, its claims. */
interface ResearchShape {
  stages: Record<string, { claims?: Array<{ modelCalls?: number; toolCalls?: number }> }>;
}

const claimsOf = (view: ResearchShape) => Object.values(view.stages).flatMap((s) => s.claims ?? []);

/**
 * The model calls a completed research made: one per stage, except a fan-out stage, which makes its claims' turns.
 */
export const modelCallsOfResearch = (view: ResearchShape): number =>
  Object.values(view.stages).reduce((n, s) => n + (s.claims ? s.claims.reduce((m, c) => m + (c.modelCalls ?? 0), 0) : 1), 0);

/**
 * The spans of a completed research's trace: 1 SERVER; per stage a PRODUCER, a CONSUMER and its invoke_agent,
 * with the chat CLIENT and its HTTP attempt (a fan-out stage instead: a second CONSUMER visit and invoke_agent,
 * for the fan-in); per claim a PRODUCER, a CONSUMER, an invoke_agent, and per model call a chat and its HTTP
 * attempt, per tool run an execute_tool and its request.
 */
export const spansOfResearch = (view: ResearchShape): number =>
  1 + 5 * Object.keys(view.stages).length + claimsOf(view).reduce((n, c) => n + 3 + 2 * (c.modelCalls ?? 0) + 2 * (c.toolCalls ?? 0), 0);
