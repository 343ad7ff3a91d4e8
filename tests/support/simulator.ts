/** Read the simulator's counters (requests per model, faults by kind). */
export async function simulatorStats(base: string): Promise<{ requests: number; byModel: Record<string, number>; faults: Record<string, number> }> {
  const res = await fetch(`${base}/_sim/stats`);
  const body = (await res.json()) as Record<string, unknown>;
  return normalizeStats(body);
}

function normalizeStats(body: Record<string, unknown>) {
  const byModel = (body.byModel ?? body.perModel ?? body.models ?? {}) as Record<string, number | { calls?: number; requests?: number }>;
  return {
    requests: Number(body.requests ?? body.totalRequests ?? 0),
    byModel: Object.fromEntries(
      Object.entries(byModel).map(([k, v]) => [k, typeof v === "number" ? v : Number(v.calls ?? v.requests ?? 0)]),
    ),
    faults: (body.faults ?? body.faultsByKind ?? {}) as Record<string, number>,
  };
}

export async function resetSimulator(base: string): Promise<void> {
  await fetch(`${base}/_sim/reset`, { method: "POST" });
}
