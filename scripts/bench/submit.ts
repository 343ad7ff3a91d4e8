import { mapLimit } from "./stats.js";
import { BenchRunError } from "./watch.js";

/** POSTs `count` researches to the api, 16 at a time, and returns their ids (a refusal stops the bench). */
export function submitResearches(fetch: typeof globalThis.fetch, apiUrl: string, count: number, label: string): Promise<string[]> {
  return mapLimit(
    Array.from({ length: count }, (_, i) => i),
    16,
    async (i) => {
      const res = await fetch(`${apiUrl}/v1/research`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ query: `${label} question ${i}: how do tides work?` }),
      });
      if (res.status !== 202) throw new BenchRunError(`${label}: submit -> ${res.status}: ${await res.text()}`);
      return ((await res.json()) as { id: string }).id;
    },
  );
}
