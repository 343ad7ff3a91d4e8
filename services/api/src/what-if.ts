import { UnknownSwapModelError, WhatIfPricer, type PriceSource, type WhatIfResult } from "@tracelane/pricing";
import type { ReadScope, TraceKind, TraceReader, TraceSummary } from "@tracelane/trace-store";
import { HttpError } from "./http/errors.js";

/**
 * What-if model swaps over recorded traces: one trace (GET /v1/traces/:traceId/what-if) or every trace of a
 * window the caller may see (GET /v1/stats/what-if). Both price the calls of the traces' stored summaries
 * with the same WhatIfPricer, so a window's answer is exactly the sum of its traces' answers.
 */

/** Most traces one window what-if reads by default (TRACELANE_WHAT_IF_MAX_TRACES); beyond it the answer is truncated. */
export const WHAT_IF_MAX_TRACES_DEFAULT = 10_000;

/** `swap=<stage>:<model>`, once per stage, one or more: the stages to price on another model. */
export function parseSwaps(values: readonly string[], stages: readonly string[]): Record<string, string> {
  const usage = `swap=<stage>:<model>, e.g. swap=factcheck:deepseek-v3.2 (repeat it for several stages; stages: ${stages.join(", ")})`;
  if (values.length === 0) throw new HttpError(400, "invalid_query", `what-if needs at least one ${usage}.`, { parameter: "swap" });
  const swaps: Record<string, string> = {};
  for (const text of values) {
    const at = text.indexOf(":");
    const [stage, model] = at > 0 ? [text.slice(0, at), text.slice(at + 1).trim()] : ["", ""];
    if (!stage || !model || model.length > 200) {
      throw new HttpError(400, "invalid_query", `"${text.slice(0, 80)}" is not a swap: expected ${usage}.`, { parameter: "swap" });
    }
    if (stages.length > 0 && !stages.includes(stage)) {
      throw new HttpError(400, "invalid_query", `"${stage.slice(0, 40)}" is not a stage of the pipeline; expected ${usage}.`, {
        parameter: "swap",
      });
    }
    if (swaps[stage] !== undefined) {
      throw new HttpError(400, "invalid_query", `stage ${stage} is swapped twice (${swaps[stage]}, ${model}); give each stage one model.`, {
        parameter: "swap",
      });
    }
    swaps[stage] = model;
  }
  return swaps;
}

/** A pricer for these swaps; a model the table does not list is a 400 unknown_model naming it and what to use. */
export function pricerFor(swaps: Record<string, string>, prices: PriceSource): WhatIfPricer {
  try {
    return new WhatIfPricer(swaps, prices);
  } catch (err) {
    if (err instanceof UnknownSwapModelError) {
      throw new HttpError(400, "unknown_model", err.message, { parameter: "swap", stage: err.stage, model: err.model });
    }
    throw err;
  }
}

/** Add the model calls of these summaries (their stored per-call stats) to the pricer. */
export async function priceSummaries(pricer: WhatIfPricer, reader: TraceReader, summaries: readonly TraceSummary[]): Promise<void> {
  pricer.add(await reader.recordedCalls(summaries));
}

export interface WindowWhatIf extends WhatIfResult {
  traces: number;
  truncated: boolean;
  /** When truncated: what the figures cover and how to see the rest. */
  truncatedNote?: string;
}

/** Every trace of [since, until] the scope may see (at most `maxTraces`, newest first), priced in batches. */
export async function whatIfOverWindow(
  reader: TraceReader,
  pricer: WhatIfPricer,
  window: { since: number; until: number; kind: TraceKind },
  scope: ReadScope,
  maxTraces: number,
): Promise<WindowWhatIf> {
  const scan = await reader.scanWindow(window, scope, { maxTraces }, (batch) => priceSummaries(pricer, reader, batch));
  const note =
    scan.truncated && scan.oldestStartMs !== undefined
      ? `more than ${maxTraces} traces started in this window: the figures cover the newest ${maxTraces}, started from ${new Date(scan.oldestStartMs).toISOString()}; narrow the window (until=${new Date(scan.oldestStartMs).toISOString()} for the older ones, or a later since)`
      : undefined;
  return { traces: scan.traces, truncated: scan.truncated, ...(note ? { truncatedNote: note } : {}), ...pricer.result() };
}
