import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunningSimulator } from "../src/app.js";
import { clientFor, startTestSimulator, userMessage } from "./helpers.js";

let sim: RunningSimulator;
let open: RunningSimulator;

beforeAll(async () => {
  sim = await startTestSimulator();
  open = await startTestSimulator({ apiKey: undefined });
});

afterAll(async () => {
  await Promise.all([sim.close(), open.close()]);
});

describe("API key", () => {
  it("rejects a wrong key with invalid_api_key and never echoes the key", async () => {
    const wrongKey = "sk-wrong-key-0123456789abcd";
    const err = await clientFor(sim, { apiKey: wrongKey })
      .chat.completions.create({ model: "gpt-4.1", messages: userMessage("hello") })
      .catch((e: unknown) => e);

    expect(err).toBeInstanceOf(OpenAI.AuthenticationError);
    const auth = err as InstanceType<typeof OpenAI.AuthenticationError>;
    expect(auth).toMatchObject({ status: 401, code: "invalid_api_key", type: "invalid_request_error" });
    expect(auth.message).toMatch(/Incorrect API key provided: sk-\.\.\.abcd/);
    expect(JSON.stringify(auth.error)).not.toContain(wrongKey);
  });

  it("rejects a request without Authorization", async () => {
    const res = await fetch(`${sim.baseURL}/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: "gpt-4.1", messages: userMessage("hello") }),
    });
    expect(res.status).toBe(401);
    expect(await res.json()).toMatchObject({
      error: { type: "invalid_request_error", message: expect.stringMatching(/didn't provide an API key/) },
    });
  });

  it("guards /v1/models too", async () => {
    const err = await clientFor(sim, { apiKey: "sk-nope" })
      .models.list()
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.AuthenticationError);
  });

  it("accepts any key when started without one", async () => {
    const res = await clientFor(open, { apiKey: "anything-goes" }).chat.completions.create({
      model: "gpt-4.1",
      messages: userMessage("hello"),
    });
    expect(res.choices[0]?.message.content).toBeTruthy();
  });
});
