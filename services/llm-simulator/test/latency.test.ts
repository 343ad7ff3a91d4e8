import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunningSimulator } from "../src/app.js";
import { admin, clientFor, startTestSimulator, userMessage } from "./helpers.js";

let sim: RunningSimulator;
let client: OpenAI;

beforeAll(async () => {
  sim = await startTestSimulator({
    latency: { baseMs: 0, jitterMs: 0, models: { "slow-model": { baseMs: 300, jitterMs: 0 } } },
    completionTokens: { min: 60, max: 80 },
  });
  client = clientFor(sim);
});

afterAll(async () => {
  await sim.close();
});

const timed = async <T>(fn: () => Promise<T>) => {
  const started = performance.now();
  const value = await fn();
  return { value, ms: performance.now() - started };
};

describe("latency", () => {
  it("delays only the model with a latency profile", async () => {
    const slow = await timed(() => client.chat.completions.create({ model: "slow-model", messages: userMessage("tides") }));
    const fast = await timed(() => client.chat.completions.create({ model: "gpt-4.1", messages: userMessage("tides") }));

    expect(slow.ms).toBeGreaterThanOrEqual(290);
    expect(fast.ms).toBeLessThan(250);
  });

  it("spreads a streamed response's latency over its chunks", async () => {
    const started = performance.now();
    const stream = await client.chat.completions.create({ model: "slow-model", messages: userMessage("tides"), stream: true });
    const arrivals: number[] = [];
    for await (const _ of stream) arrivals.push(performance.now() - started);

    const first = arrivals[0] ?? 0;
    const last = arrivals.at(-1) ?? 0;
    // ~30% before the first chunk, the rest between chunks.
    expect(first).toBeGreaterThanOrEqual(80);
    expect(first).toBeLessThan(250);
    expect(last).toBeGreaterThanOrEqual(290);
  });

  it("applies base latency and jitter set at runtime", async () => {
    await admin(sim, "config", { latency: { baseMs: 150, jitterMs: 50 } });
    try {
      const { ms } = await timed(() => client.chat.completions.create({ model: "gpt-4.1", messages: userMessage("rivers") }));
      expect(ms).toBeGreaterThanOrEqual(140);
    } finally {
      await admin(sim, "config", { latency: { baseMs: 0, jitterMs: 0 } });
    }
  });
});
