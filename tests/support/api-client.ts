import type { ResearchView } from "@tracelane/research-store";
import { readServerSentEvents, waitFor } from "@tracelane/testkit";

/** What a user of the api does, as plain HTTP; with `apiKey`, every request carries it as a Bearer token. */
export function apiClient(base: string, opts: { apiKey?: string } = {}) {
  const auth: Record<string, string> = opts.apiKey ? { authorization: `Bearer ${opts.apiKey}` } : {};
  return {
    async submit(body: unknown, headers: Record<string, string> = {}) {
      const res = await fetch(`${base}/v1/research`, {
        method: "POST",
        headers: { "content-type": "application/json", ...auth, ...headers },
        body: JSON.stringify(body),
      });
      return { status: res.status, headers: res.headers, body: (await res.json()) as { id: string; traceId: string; status: string } };
    },
    async get(id: string): Promise<ResearchView> {
      const res = await fetch(`${base}/v1/research/${id}`, { headers: auth });
      if (!res.ok) throw new Error(`GET research ${id} -> ${res.status}`);
      return (await res.json()) as ResearchView;
    },
    async cancel(id: string) {
      const res = await fetch(`${base}/v1/research/${id}`, { method: "DELETE", headers: auth });
      return { status: res.status, body: (await res.json()) as ResearchView };
    },
    async events(id: string): Promise<Array<{ event: string; data: Record<string, unknown> }>> {
      const out: Array<{ event: string; data: Record<string, unknown> }> = [];
      for await (const ev of readServerSentEvents(`${base}/v1/research/${id}/events`, { headers: auth })) {
        out.push({ event: ev.event, data: JSON.parse(ev.data) as Record<string, unknown> });
      }
      return out;
    },
    async waitForFinal(id: string, timeoutMs = 30_000): Promise<ResearchView> {
      return waitFor(
        async () => {
          const v = await this.get(id);
          return ["completed", "failed", "cancelled"].includes(v.status) ? v : undefined;
        },
        { timeoutMs, intervalMs: 50, what: `research ${id} to finish` },
      );
    },
  };
}

export type ApiClient = ReturnType<typeof apiClient>;
