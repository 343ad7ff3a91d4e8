import type { ResearchListQuery, ResearchStore, ResearchSummary } from "@tracelane/research-store";
import type { AnomalyType, TraceReader } from "@tracelane/trace-store";

export interface ResearchListRow extends ResearchSummary {
  anomalyCount: number;
  anomalyTypes: AnomalyType[];
}

/**
 * A page of researches, newest first, each with what the trace-collector found in its trace so far
 * (anomaly count and types; 0 and [] before its trace is assembled, or without a trace reader).
 */
export async function listResearch(
  deps: { store: ResearchStore; traces?: Pick<TraceReader, "anomalyCounts"> | undefined },
  query: ResearchListQuery,
): Promise<{ researches: ResearchListRow[]; nextCursor?: string }> {
  const page = await deps.store.list(query);
  const traced = page.researches.filter((r) => r.traceId !== null);
  const counts = deps.traces ? await deps.traces.anomalyCounts(traced.map((r) => r.traceId!)) : [];
  const byTrace = new Map(traced.map((r, i) => [r.traceId!, counts[i]]));
  const researches = page.researches.map((r) => {
    const found = r.traceId === null ? undefined : byTrace.get(r.traceId);
    return { ...r, anomalyCount: found?.count ?? 0, anomalyTypes: found?.types ?? [] };
  });
  return page.nextCursor ? { researches, nextCursor: page.nextCursor } : { researches };
}
