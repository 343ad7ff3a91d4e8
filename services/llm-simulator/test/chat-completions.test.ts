import { encode } from "gpt-tokenizer/encoding/o200k_base";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunningSimulator } from "../src/app.js";
import { API_KEY, clientFor, startTestSimulator, userMessage } from "./helpers.js";

const tokens = (text: string) => encode(text, { disallowedSpecial: new Set() }).length;

const QUESTION = "How does urban green space affect mental health, stress and physical activity in older adults?";

let sim: RunningSimulator;
let client: OpenAI;

beforeAll(async () => {
  sim = await startTestSimulator();
  client = clientFor(sim);
});

afterAll(async () => {
  await sim.close();
});

describe("POST /v1/chat/completions", () => {
  it("returns the same completion for the same request", async () => {
    const body = { model: "gpt-4.1", messages: userMessage(QUESTION) };
    const first = await client.chat.completions.create(body);
    const second = await client.chat.completions.create(body);

    expect(first.id).toMatch(/^chatcmpl-[A-Za-z0-9]{29}$/);
    expect(second.id).toBe(first.id);
    expect(second.choices[0]?.message.content).toBe(first.choices[0]?.message.content);
    expect(first).toMatchObject({
      object: "chat.completion",
      model: "gpt-4.1",
      choices: [{ index: 0, finish_reason: "stop", message: { role: "assistant" } }],
    });
    expect(typeof first.created).toBe("number");
  });

  it("gives different text for a different model or question", async () => {
    const a = await client.chat.completions.create({ model: "gpt-4.1", messages: userMessage(QUESTION) });
    const b = await client.chat.completions.create({ model: "gemini-2.5-flash", messages: userMessage(QUESTION) });
    const c = await client.chat.completions.create({ model: "gpt-4.1", messages: userMessage(`${QUESTION} In cities?`) });

    expect(b.model).toBe("gemini-2.5-flash");
    expect(b.choices[0]?.message.content).not.toBe(a.choices[0]?.message.content);
    expect(c.choices[0]?.message.content).not.toBe(a.choices[0]?.message.content);
    expect(b.id).not.toBe(a.id);
  });

  it("writes prose from the words of the last user message, within the default 120-400 tokens", async () => {
    const res = await client.chat.completions.create({
      model: "deepseek-v3.2",
      messages: [
        { role: "system", content: "You are a careful research assistant." },
        { role: "user", content: "Ignore this earlier question about volcanoes." },
        { role: "assistant", content: "Noted." },
        { role: "user", content: QUESTION },
      ],
    });
    const content = res.choices[0]?.message.content ?? "";

    expect(content).toMatch(/green|urban|mental|stress/i);
    expect(content).not.toMatch(/volcano/i);
    expect(content).toMatch(/\n1\. /);
    expect(tokens(content)).toBeGreaterThanOrEqual(120);
    expect(tokens(content)).toBeLessThanOrEqual(400);
  });

  it("follows a system prompt that asks to verify claims", async () => {
    const res = await client.chat.completions.create({
      model: "claude-sonnet-4.5",
      messages: [
        { role: "system", content: "Verify each claim and give a verdict." },
        { role: "user", content: QUESTION },
      ],
    });
    expect(res.choices[0]?.message.content).toMatch(/Verdict: (Supported|Partially supported|Unsupported|Unverifiable)/);
  });

  it("reports usage counted with the o200k tokenizer", async () => {
    const messages: OpenAI.Chat.ChatCompletionMessageParam[] = [
      { role: "system", content: "Extract the claims." },
      { role: "user", content: [{ type: "text", text: QUESTION }] },
    ];
    const res = await client.chat.completions.create({ model: "gpt-4.1", messages });
    const content = res.choices[0]?.message.content ?? "";

    const expectedPrompt = tokens("Extract the claims.") + tokens(QUESTION) + 3 * messages.length + 3;
    expect(res.usage).toEqual({
      prompt_tokens: expectedPrompt,
      completion_tokens: tokens(content),
      total_tokens: expectedPrompt + tokens(content),
      prompt_tokens_details: { cached_tokens: 0, audio_tokens: 0 },
      completion_tokens_details: { reasoning_tokens: 0, audio_tokens: 0, accepted_prediction_tokens: 0, rejected_prediction_tokens: 0 },
    });
  });

  it("cuts the completion at max_tokens with finish_reason length", async () => {
    const full = await client.chat.completions.create({ model: "gpt-4.1", messages: userMessage(QUESTION) });
    const cut = await client.chat.completions.create({ model: "gpt-4.1", messages: userMessage(QUESTION), max_tokens: 25 });
    const cutNew = await client.chat.completions.create({ model: "gpt-4.1", messages: userMessage(QUESTION), max_completion_tokens: 25 });
    const content = cut.choices[0]?.message.content ?? "";

    expect(cut.choices[0]?.finish_reason).toBe("length");
    expect(cut.usage?.completion_tokens).toBe(25);
    expect(tokens(content)).toBe(25);
    expect(full.choices[0]?.message.content?.startsWith(content)).toBe(true);
    expect(cutNew.choices[0]?.message.content).toBe(content);
  });

  it("keeps finish_reason stop when max_tokens is larger than the text", async () => {
    const res = await client.chat.completions.create({ model: "gpt-4.1", messages: userMessage(QUESTION), max_tokens: 4000 });
    expect(res.choices[0]?.finish_reason).toBe("stop");
  });

  it("streams the same text as the non-streaming response, then a usage chunk", async () => {
    const body = { model: "gemini-2.5-flash", messages: userMessage(QUESTION) };
    const whole = await client.chat.completions.create(body);
    const stream = await client.chat.completions.create({ ...body, stream: true, stream_options: { include_usage: true } });

    const chunks: OpenAI.Chat.ChatCompletionChunk[] = [];
    for await (const chunk of stream) chunks.push(chunk);
    const text = chunks.map((c) => c.choices[0]?.delta.content ?? "").join("");
    const last = chunks.at(-1);

    expect(chunks.length).toBeGreaterThan(10);
    expect(text).toBe(whole.choices[0]?.message.content);
    expect(chunks[0]?.choices[0]?.delta.role).toBe("assistant");
    expect(chunks.every((c) => c.id === whole.id && c.object === "chat.completion.chunk" && c.model === "gemini-2.5-flash")).toBe(true);
    expect(chunks.at(-2)?.choices[0]?.finish_reason).toBe("stop");
    expect(last?.choices).toEqual([]);
    expect(last?.usage).toEqual(whole.usage);
  });

  it("streams without a usage chunk unless include_usage is set", async () => {
    const stream = await client.chat.completions.create({ model: "gpt-4.1", messages: userMessage(QUESTION), stream: true });
    const chunks: OpenAI.Chat.ChatCompletionChunk[] = [];
    for await (const chunk of stream) chunks.push(chunk);

    expect(chunks.at(-1)?.choices[0]?.finish_reason).toBe("stop");
    expect(chunks.some((c) => c.usage)).toBe(false);
  });

  it("streams finish_reason length when max_tokens cuts the text", async () => {
    const stream = await client.chat.completions.create({
      model: "gpt-4.1",
      messages: userMessage(QUESTION),
      max_tokens: 10,
      stream: true,
      stream_options: { include_usage: true },
    });
    const chunks: OpenAI.Chat.ChatCompletionChunk[] = [];
    for await (const chunk of stream) chunks.push(chunk);

    expect(chunks.at(-2)?.choices[0]?.finish_reason).toBe("length");
    expect(chunks.at(-1)?.usage?.completion_tokens).toBe(10);
  });

  it("rejects an invalid body with an OpenAI-style 400", async () => {
    const err = await client.chat.completions.create({ model: "gpt-4.1", messages: [] }).catch((e: unknown) => e);

    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    expect(err).toMatchObject({ status: 400, type: "invalid_request_error", param: "messages" });
  });

  it("names the missing parameter and the bad field in a 400", async () => {
    const post = (body: string) =>
      fetch(`${sim.baseURL}/chat/completions`, {
        method: "POST",
        headers: { authorization: `Bearer ${API_KEY}`, "content-type": "application/json" },
        body,
      });

    const missing = await post(JSON.stringify({ messages: userMessage("hi") }));
    expect(missing.status).toBe(400);
    expect(await missing.json()).toEqual({
      error: {
        message: "Missing required parameter: 'model'.",
        type: "invalid_request_error",
        param: "model",
        code: "missing_required_parameter",
      },
    });

    const badRole = await post(JSON.stringify({ model: "gpt-4.1", messages: [{ role: "robot", content: "hi" }] }));
    expect(badRole.status).toBe(400);
    expect(await badRole.json()).toMatchObject({ error: { type: "invalid_request_error", param: "messages[0].role" } });

    const notJson = await post("{not json");
    expect(notJson.status).toBe(400);
    expect(await notJson.json()).toMatchObject({
      error: { type: "invalid_request_error", message: expect.stringMatching(/could not parse the JSON body/) },
    });
  });

  it("rejects stream_options without stream, as OpenAI does", async () => {
    const err = await client.chat.completions
      .create({ model: "gpt-4.1", messages: userMessage("hi"), stream_options: { include_usage: true } })
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ status: 400, param: "stream_options" });
  });
});

describe("GET /v1/models", () => {
  it("lists the known models", async () => {
    const ids: string[] = [];
    for await (const model of client.models.list()) ids.push(model.id);

    expect(ids).toEqual(expect.arrayContaining(["gpt-4.1", "gemini-2.5-flash", "deepseek-v3.2", "claude-sonnet-4.5"]));
    const model = await client.models.retrieve("gpt-4.1");
    expect(model).toMatchObject({ id: "gpt-4.1", object: "model", owned_by: "openai" });
  });

  it("answers 404 model_not_found for an unknown model id", async () => {
    const err = await client.models.retrieve("no-such-model").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.NotFoundError);
    expect(err).toMatchObject({ code: "model_not_found" });
  });
});

describe("GET /healthz", () => {
  it("answers without an API key", async () => {
    const res = await fetch(`http://127.0.0.1:${sim.port}/healthz`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: "ok" });
  });
});
