import OpenAI from "openai";
import { startSimulator, type RunningSimulator, type SimulatorConfig } from "../src/app.js";

export const API_KEY = "sk-simulator-test-key";

export async function startTestSimulator(config: Partial<SimulatorConfig> = {}): Promise<RunningSimulator> {
  return startSimulator({ apiKey: API_KEY, directives: true, ...config });
}

/** The real OpenAI client pointed at the simulator; no retries unless asked for. */
export function clientFor(sim: RunningSimulator, opts: ConstructorParameters<typeof OpenAI>[0] = {}): OpenAI {
  return new OpenAI({ apiKey: API_KEY, baseURL: sim.baseURL, maxRetries: 0, ...opts });
}

/** Admin endpoints (`/_sim/...`) live next to `/v1`. */
export async function admin<T = unknown>(sim: RunningSimulator, path: string, body?: unknown): Promise<T> {
  const res = await fetch(`http://127.0.0.1:${sim.port}/_sim/${path}`, {
    method: body === undefined ? "GET" : "POST",
    headers: { "content-type": "application/json" },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  if (!res.ok) throw new Error(`/_sim/${path} -> ${res.status} ${await res.text()}`);
  return (await res.json()) as T;
}

export const userMessage = (content: string): OpenAI.Chat.ChatCompletionMessageParam[] => [{ role: "user", content }];
