/** The simulator's counters: requests per model (faulted ones included) and faults by kind. */
export async function simulatorStats(
  base: string,
): Promise<{ requests: number; byModel: Record<string, number>; faults: Record<string, number> }> {
  const res = await fetch(`${base}/_sim/stats`);
  const body = (await res.json()) as { requests: number; faults: Record<string, number>; models: Record<string, { requests: number }> };
  return {
    requests: body.requests,
    byModel: Object.fromEntries(Object.entries(body.models).map(([model, s]) => [model, s.requests])),
    faults: body.faults,
  };
}
