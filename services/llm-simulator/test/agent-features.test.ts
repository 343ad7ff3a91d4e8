import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import type { RunningSimulator } from "../src/app.js";
import { API_KEY, admin, clientFor, startTestSimulator } from "./helpers.js";

let sim: RunningSimulator;
let client: OpenAI;

beforeAll(async () => {
  sim = await startTestSimulator();
  client = clientFor(sim);
});
afterAll(async () => {
  await sim.close();
});

const SEARCH_TOOL: OpenAI.Chat.ChatCompletionTool = {
  type: "function",
  function: {
    name: "search_evidence",
    description: "Search for evidence about a claim",
    parameters: { type: "object", properties: { query: { type: "string" } }, required: ["query"], additionalProperties: false },
  },
};

const VERDICT_SCHEMA = {
  type: "object",
  properties: {
    verdict: { type: "string", enum: ["supported", "refuted", "unverifiable"] },
    evidence: {
      type: "array",
      items: { type: "object", properties: { url: { type: "string" }, quote: { type: "string" } }, required: ["url", "quote"] },
      maxItems: 3,
    },
  },
  required: ["verdict", "evidence"],
  additionalProperties: false,
};
const Verdict = z.object({
  verdict: z.enum(["supported", "refuted", "unverifiable"]),
  evidence: z.array(z.object({ url: z.string(), quote: z.string() })).max(3),
});

const search = (query: string, maxResults?: number) =>
  fetch(`http://127.0.0.1:${sim.port}/search`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${API_KEY}` },
    body: JSON.stringify({ query, ...(maxResults ? { max_results: maxResults } : {}) }),
  });

describe("simulator: what an agent's model calls need", () => {
  it("runs a whole tool loop through the openai client: tool calls (some in parallel), results back, then a structured verdict", async () => {
    const claim = "Global mean sea level has risen about 3.4 mm per year since 1993.";
    const messages: OpenAI.Chat.ChatCompletionMessageParam[] = [
      { role: "system", content: "You verify one claim. Search for evidence, then answer with a verdict." },
      { role: "user", content: claim },
    ];
    const format = { type: "json_schema" as const, json_schema: { name: "verdict", schema: VERDICT_SCHEMA, strict: true } };

    const first = await client.chat.completions.create({
      model: "gemini-2.5-flash",
      messages,
      tools: [SEARCH_TOOL],
      response_format: format,
    });
    const ask = first.choices[0]!;
    expect(ask.finish_reason).toBe("tool_calls");
    expect(ask.message.content).toBeNull();
    const calls = ask.message.tool_calls!;
    expect(calls.length).toBeGreaterThanOrEqual(1);
    expect(new Set(calls.map((c) => c.id)).size).toBe(calls.length);
    for (const call of calls) {
      expect(call.type).toBe("function");
      if (call.type !== "function") continue;
      expect(call.function.name).toBe("search_evidence");
      expect((JSON.parse(call.function.arguments) as { query: string }).query).toMatch(/sea|level|mean|risen|global/);
    }

    // The worker runs the tools (against the simulator's search API) and sends every result back.
    messages.push(ask.message);
    for (const call of calls) {
      if (call.type !== "function") continue;
      const found = (await (await search((JSON.parse(call.function.arguments) as { query: string }).query)).json()) as {
        results: unknown[];
      };
      messages.push({ role: "tool", tool_call_id: call.id, content: JSON.stringify(found.results) });
    }
    const answer = await client.chat.completions.create({
      model: "gemini-2.5-flash",
      messages,
      tools: [SEARCH_TOOL],
      response_format: format,
    });
    expect(answer.choices[0]!.finish_reason).toBe("stop");
    expect(Verdict.parse(JSON.parse(answer.choices[0]!.message.content!))).toBeDefined();
    expect(answer.usage!.prompt_tokens).toBeGreaterThan(first.usage!.prompt_tokens); // the results are in the prompt
  });

  it("asks for the same calls for the same request, one when parallel_tool_calls is false, none with tool_choice none", async () => {
    const body = { model: "gpt-4.1", messages: [{ role: "user" as const, content: "Do tides depend on the Moon?" }], tools: [SEARCH_TOOL] };
    const a = await client.chat.completions.create(body);
    const b = await client.chat.completions.create(body);
    expect(b.choices[0]!.message.tool_calls).toEqual(a.choices[0]!.message.tool_calls);
    const single = await client.chat.completions.create({ ...body, parallel_tool_calls: false });
    expect(single.choices[0]!.message.tool_calls).toHaveLength(1);
    const none = await client.chat.completions.create({ ...body, tool_choice: "none" });
    expect(none.choices[0]!.message.tool_calls).toBeUndefined();
    expect(none.choices[0]!.message.content).toBeTruthy();
    const named = await client.chat.completions.create({
      ...body,
      tool_choice: { type: "function", function: { name: "search_evidence" } },
    });
    expect(named.choices[0]!.finish_reason).toBe("tool_calls");
  });

  it("refuses what OpenAI refuses: a tool message answering no call, a call left unanswered, a tool_choice naming no tool", async () => {
    const orphan = client.chat.completions.create({
      model: "gpt-4.1",
      messages: [
        { role: "user", content: "hi" },
        { role: "tool", tool_call_id: "call_nope", content: "[]" },
      ],
    });
    await expect(orphan).rejects.toMatchObject({
      status: 400,
      message: expect.stringMatching(/must be a response to a preceding message with 'tool_calls'/),
    });
    const unanswered = client.chat.completions.create({
      model: "gpt-4.1",
      messages: [
        { role: "user", content: "hi" },
        {
          role: "assistant",
          content: null,
          tool_calls: [{ id: "call_1", type: "function", function: { name: "search_evidence", arguments: "{}" } }],
        },
        { role: "user", content: "and?" },
      ],
    });
    await expect(unanswered).rejects.toMatchObject({
      status: 400,
      message: expect.stringMatching(/did not have response messages: call_1/),
    });
    const badChoice = client.chat.completions.create({
      model: "gpt-4.1",
      messages: [{ role: "user", content: "hi" }],
      tools: [SEARCH_TOOL],
      tool_choice: { type: "function", function: { name: "other" } },
    });
    await expect(badChoice).rejects.toMatchObject({ status: 400, message: expect.stringMatching(/no function named 'other'/) });
  });

  it("answers structured output valid against the schema, and streams tool calls as the openai client assembles them", async () => {
    const claims = await client.chat.completions.create({
      model: "gpt-4.1",
      messages: [{ role: "user", content: "Why do leaves change colour in autumn?" }],
      response_format: {
        type: "json_schema",
        json_schema: {
          name: "claims",
          schema: {
            type: "object",
            properties: {
              claims: {
                type: "array",
                items: { type: "object", properties: { claim: { type: "string" } }, required: ["claim"] },
                minItems: 2,
                maxItems: 8,
              },
            },
            required: ["claims"],
          },
        },
      },
    });
    const parsed = z
      .object({
        claims: z
          .array(z.object({ claim: z.string().min(10) }))
          .min(2)
          .max(8),
      })
      .parse(JSON.parse(claims.choices[0]!.message.content!));
    expect(parsed.claims.length).toBeGreaterThanOrEqual(2);

    const stream = client.chat.completions.stream({
      model: "gpt-4.1",
      messages: [{ role: "user", content: "Is the sky blue because of scattering?" }],
      tools: [SEARCH_TOOL],
      stream_options: { include_usage: true },
    });
    const done = await stream.finalChatCompletion();
    expect(done.choices[0]!.finish_reason).toBe("tool_calls");
    const call = done.choices[0]!.message.tool_calls![0]!;
    expect(call.type === "function" && JSON.parse(call.function.arguments)).toHaveProperty("query");
    expect(done.usage!.completion_tokens).toBeGreaterThan(0);
  });

  it("reports cached prompt tokens once a model has seen a system prompt, and reasoning tokens for reasoning models", async () => {
    await admin(sim, "reset", {});
    const system = {
      role: "system" as const,
      content: "You are a careful research analyst. Always cite primary sources and state uncertainty plainly.",
    };
    const ask = (model: string, q: string) => client.chat.completions.create({ model, messages: [system, { role: "user", content: q }] });

    const cold = await ask("gpt-4.1", "What drives urban heat islands?");
    expect(cold.usage!.prompt_tokens_details!.cached_tokens).toBe(0);
    const warm = await ask("gpt-4.1", "How much warmer are cities at night?");
    expect(warm.usage!.prompt_tokens_details!.cached_tokens).toBeGreaterThan(10);
    expect(warm.usage!.prompt_tokens_details!.cached_tokens).toBeLessThan(warm.usage!.prompt_tokens);
    // Anthropic models cache only when asked (cache_control), so never here.
    await ask("claude-sonnet-4.5", "x");
    expect((await ask("claude-sonnet-4.5", "y")).usage!.prompt_tokens_details!.cached_tokens).toBe(0);

    const reasoning = await ask("o4-mini", "What drives urban heat islands?");
    const details = reasoning.usage!.completion_tokens_details!;
    expect(details.reasoning_tokens).toBeGreaterThan(0);
    expect(reasoning.usage!.completion_tokens).toBeGreaterThan(details.reasoning_tokens!); // visible output + reasoning
    expect(cold.usage!.completion_tokens_details!.reasoning_tokens).toBe(0);
  });

  it("serves evidence search: ranked corpus hits, deterministic, topped up for unknown topics, with clear 400s", async () => {
    const res = await search("sea level rise satellite altimetry", 3);
    expect(res.status).toBe(200);
    const body = (await res.json()) as { query: string; results: Array<{ title: string; url: string; content: string; score: number }> };
    expect(body.results[0]!.url).toBe("https://evidence.example/sea-level/altimetry");
    expect(body.results.length).toBeLessThanOrEqual(3);
    for (let i = 1; i < body.results.length; i++) expect(body.results[i]!.score).toBeLessThanOrEqual(body.results[i - 1]!.score);
    expect(await (await search("sea level rise satellite altimetry", 3)).json()).toMatchObject({ results: body.results });

    const unknown = (await (await search("quantum chromodynamics of lattice gluons")).json()) as { results: Array<{ content: string }> };
    expect(unknown.results.length).toBeGreaterThanOrEqual(3);
    expect(unknown.results[0]!.content).toMatch(/quantum|chromodynamics|lattice|gluons/);

    const bad = await search("");
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: { message: string } }).error.message).toMatch(/query must not be empty/);
    const noKey = await fetch(`http://127.0.0.1:${sim.port}/search`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: "{}",
    });
    expect(noKey.status).toBe(401);
  });
});
