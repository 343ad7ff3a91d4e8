import OpenAI from "openai";
import { waitFor } from "@tracelane/testkit";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { RunningSimulator, SimulatorStats } from "../src/app.js";
import { admin, clientFor, startTestSimulator, userMessage } from "./helpers.js";

let sim: RunningSimulator;
let client: OpenAI;

beforeAll(async () => {
  // Short completions keep the many-request tests fast; a tiny window for one model exercises the real limit.
  sim = await startTestSimulator({
    retryAfterS: 0.05,
    completionTokens: { min: 5, max: 20 },
    contextLimits: { "tiny-model": 60 },
  });
  client = clientFor(sim);
});

afterAll(async () => {
  await sim.close();
});

beforeEach(async () => {
  await admin(sim, "config", { faultRate: 0, faultKinds: ["429", "500", "503"] });
  await admin(sim, "reset", {});
});

const ask = (content: string, opts: { model?: string; fault?: string; client?: OpenAI } = {}) =>
  (opts.client ?? client).chat.completions.create(
    { model: opts.model ?? "gpt-4.1", messages: userMessage(content) },
    opts.fault ? { headers: { "x-sim-fault": opts.fault } } : {},
  );

const failure = (promise: Promise<unknown>) =>
  promise.then(
    () => {
      throw new Error("expected the request to fail");
    },
    (err: unknown) => err,
  );

describe("faults chosen per request", () => {
  it("answers x-sim-fault: 429 with a RateLimitError carrying Retry-After", async () => {
    const err = await failure(ask("rates", { fault: "429" }));

    expect(err).toBeInstanceOf(OpenAI.RateLimitError);
    const rate = err as InstanceType<typeof OpenAI.RateLimitError>;
    expect(rate.code).toBe("rate_limit_exceeded");
    expect(rate.headers?.get("retry-after")).toBe("1");
    expect(rate.headers?.get("retry-after-ms")).toBe("50");
  });

  it("answers 500 and 503 with InternalServerError", async () => {
    const e500 = await failure(ask("boom", { fault: "500" }));
    const e503 = await failure(ask("boom", { fault: "503" }));

    expect(e500).toBeInstanceOf(OpenAI.InternalServerError);
    expect(e500).toMatchObject({ status: 500, type: "server_error" });
    expect(e503).toBeInstanceOf(OpenAI.InternalServerError);
    expect(e503).toMatchObject({ status: 503 });
  });

  it("answers 401 with an AuthenticationError", async () => {
    const err = await failure(ask("who", { fault: "401" }));
    expect(err).toBeInstanceOf(OpenAI.AuthenticationError);
    expect(err).toMatchObject({ code: "invalid_api_key" });
  });

  it("answers context_length with the context_length_exceeded 400", async () => {
    const err = await failure(ask("long", { fault: "context_length", model: "deepseek-v3.2" }));

    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    expect(err).toMatchObject({ code: "context_length_exceeded", type: "invalid_request_error", param: "messages" });
    expect((err as Error).message).toMatch(/maximum context length is 128000 tokens/);
  });

  it("answers malformed with a 200 body the client cannot parse", async () => {
    const err = await failure(ask("garbled", { fault: "malformed" }));
    expect(err).toBeInstanceOf(SyntaxError);
  });

  it("breaks a stream with malformed data", async () => {
    const quiet = clientFor(sim, { logLevel: "off" });
    const read = async () => {
      const stream = await quiet.chat.completions.create(
        { model: "gpt-4.1", messages: userMessage("garbled stream"), stream: true },
        { headers: { "x-sim-fault": "malformed" } },
      );
      for await (const _ of stream) {
        // consume
      }
    };
    expect(await failure(read())).toBeInstanceOf(SyntaxError);
  });

  it("hangs until the client times out, then releases the connection", async () => {
    const impatient = clientFor(sim, { timeout: 300 });
    const started = Date.now();
    const err = await failure(ask("silence", { fault: "hang", client: impatient }));

    expect(err).toBeInstanceOf(OpenAI.APIConnectionTimeoutError);
    expect(Date.now() - started).toBeGreaterThanOrEqual(250);
    await waitFor(async () => (await admin<SimulatorStats>(sim, "stats")).hanging === 0, {
      what: "hung request released",
      timeoutMs: 5_000,
    });
    expect((await admin<SimulatorStats>(sim, "stats")).faults.hang).toBe(1);
  });

  it("rejects an unknown fault kind instead of ignoring it", async () => {
    const err = await failure(ask("typo", { fault: "42" }));
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    expect((err as Error).message).toMatch(/Unknown simulator fault '42'/);
  });
});

describe("fault directives in messages", () => {
  it("fails a request whose message carries [[sim:fault=503]]", async () => {
    const err = await failure(ask("Tell me about tides. [[sim:fault=503]]"));
    expect(err).toBeInstanceOf(OpenAI.InternalServerError);
    expect(err).toMatchObject({ status: 503 });
  });

  it("fails twice then succeeds with times=2", async () => {
    const prompt = "Survey coral bleaching. [[sim:fault=429;times=2]]";

    expect(await failure(ask(prompt))).toBeInstanceOf(OpenAI.RateLimitError);
    expect(await failure(ask(prompt))).toBeInstanceOf(OpenAI.RateLimitError);
    const ok = await ask(prompt);

    expect(ok.choices[0]?.message.content).toBeTruthy();
    expect(ok.choices[0]?.message.content).not.toContain("[[sim:");
  });

  it("lets the openai client's own retries get through times=2", async () => {
    const retrying = clientFor(sim, { maxRetries: 2 });
    const res = await ask("Survey kelp forests. [[sim:fault=500;times=2]]", { client: retrying });

    expect(res.choices[0]?.finish_reason).toBe("stop");
    const stats = await admin<SimulatorStats>(sim, "stats");
    expect(stats.requests).toBe(3);
    expect(stats.faults["500"]).toBe(2);
    expect(stats.succeeded).toBe(1);
  });

  it("counts times per model", async () => {
    const prompt = "Compare solar and wind. [[sim:fault=503;times=1]]";

    expect(await failure(ask(prompt, { model: "gpt-4.1" }))).toBeInstanceOf(OpenAI.InternalServerError);
    expect(await failure(ask(prompt, { model: "gemini-2.5-flash" }))).toBeInstanceOf(OpenAI.InternalServerError);
    await expect(ask(prompt, { model: "gpt-4.1" })).resolves.toBeTruthy();
  });

  it("only fails the model named in model=", async () => {
    const prompt = "Evaluate battery chemistry. [[sim:fault=500;model=gemini-2.5-flash]]";

    await expect(ask(prompt, { model: "gpt-4.1" })).resolves.toBeTruthy();
    expect(await failure(ask(prompt, { model: "gemini-2.5-flash" }))).toBeInstanceOf(OpenAI.InternalServerError);
  });

  it("gives the same text with or without an exhausted directive's failures", async () => {
    const prompt = "Assess soil carbon. [[sim:fault=429;times=1]]";
    await failure(ask(prompt));
    const first = await ask(prompt);
    const second = await ask(prompt);
    expect(second.choices[0]?.message.content).toBe(first.choices[0]?.message.content);
  });

  it("forgets times state on POST /_sim/reset", async () => {
    const prompt = "Review sleep research. [[sim:fault=503;times=1]]";
    await failure(ask(prompt));
    await expect(ask(prompt)).resolves.toBeTruthy();

    await admin(sim, "reset", {});
    expect(await failure(ask(prompt))).toBeInstanceOf(OpenAI.InternalServerError);
  });

  it("rejects a malformed directive with a 400", async () => {
    const err = await failure(ask("[[sim:fault=429;tims=2]]"));
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    expect((err as Error).message).toMatch(/Invalid simulator directive/);
  });
});

describe("fault directives switched off (LLM_SIM_DIRECTIVES unset, as under pnpm start)", () => {
  it("answers a message carrying [[sim:fault=503]] (or a malformed directive) normally: a public query cannot inject a fault", async () => {
    const plain = await startTestSimulator({ directives: false });
    try {
      const client = clientFor(plain);
      for (const content of ["Tell me about tides. [[sim:fault=503]]", "[[sim:fault=429;tims=2]]", "[[sim:fault=hang]]"]) {
        const res = await client.chat.completions.create({ model: "gpt-4.1", messages: [{ role: "user", content }] });
        expect(res.choices[0]?.finish_reason).toBe("stop");
      }
      const stats = await admin<{ requests: number; faults: Record<string, number> }>(plain, "stats");
      expect(stats.requests).toBe(3);
      expect(Object.values(stats.faults).reduce((a, b) => a + b, 0)).toBe(0);
    } finally {
      await plain.close();
    }
  });
});

describe("faults by rate", () => {
  const askMany = async (n: number) => {
    const outcomes = await Promise.all(
      Array.from({ length: n }, (_, i) =>
        ask(`Question number ${i} about estuaries`).then(
          () => "ok",
          (err: unknown) => (err instanceof OpenAI.APIError ? String(err.status) : "other"),
        ),
      ),
    );
    return outcomes;
  };

  it("fails every request at rate 1 with a kind from the list", async () => {
    await admin(sim, "config", { faultRate: 1, faultKinds: ["503"] });
    const outcomes = await askMany(50);
    expect(outcomes.every((o) => o === "503")).toBe(true);
  });

  it("fails nothing at rate 0", async () => {
    const outcomes = await askMany(50);
    expect(outcomes.every((o) => o === "ok")).toBe(true);
  });

  it("fails roughly the configured share of requests", async () => {
    await admin(sim, "config", { faultRate: 0.3, faultKinds: ["429", "500"] });
    const outcomes = await askMany(200);
    const failed = outcomes.filter((o) => o !== "ok");

    // Binomial(200, 0.3): mean 60, sd ~6.5; 25..95 is more than 5 sd either side.
    expect(failed.length).toBeGreaterThan(25);
    expect(failed.length).toBeLessThan(95);
    expect(new Set(failed)).toEqual(new Set(["429", "500"]));
    const stats = await admin<SimulatorStats>(sim, "stats");
    expect(stats.faultsBySource.rate).toBe(failed.length);
    expect(stats.faults["429"] + stats.faults["500"]).toBe(failed.length);
  });
});

describe("context window", () => {
  it("rejects a prompt over the model's window with context_length_exceeded", async () => {
    const err = await failure(ask("word ".repeat(200), { model: "tiny-model" }));

    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    expect(err).toMatchObject({ code: "context_length_exceeded", param: "messages" });
    expect((err as Error).message).toMatch(
      /^400 This model's maximum context length is 60 tokens\. However, your messages resulted in \d+ tokens/,
    );
  });

  it("counts max_tokens against the window", async () => {
    await expect(ask("short", { model: "tiny-model" })).resolves.toBeTruthy();
    const err = await failure(client.chat.completions.create({ model: "tiny-model", messages: userMessage("short"), max_tokens: 100 }));
    expect(err).toMatchObject({ code: "context_length_exceeded" });
    expect((err as Error).message).toMatch(/in the completion/);
  });

  it("applies limits changed at runtime", async () => {
    await admin(sim, "config", { contextLimits: { "*": 5 } });
    try {
      expect(await failure(ask("a little longer than five tokens"))).toMatchObject({ code: "context_length_exceeded" });
    } finally {
      await admin(sim, "config", { contextLimits: { "tiny-model": 60 } });
    }
  });
});

describe("admin endpoints", () => {
  it("counts requests, faults and tokens per model", async () => {
    await ask("one", { model: "gpt-4.1" });
    await ask("two", { model: "gpt-4.1" });
    await failure(ask("three", { model: "claude-sonnet-4.5", fault: "429" }));

    const stats = await admin<SimulatorStats>(sim, "stats");
    expect(stats).toMatchObject({ requests: 3, succeeded: 2, faults: { "429": 1 }, faultsBySource: { header: 1 } });
    expect(stats.models["gpt-4.1"]).toMatchObject({ requests: 2, succeeded: 2, faults: 0 });
    expect(stats.models["gpt-4.1"]?.completionTokens).toBeGreaterThan(0);
    expect(stats.models["claude-sonnet-4.5"]).toMatchObject({ requests: 1, faults: 1 });
  });

  it("rejects an invalid config update and keeps the old config", async () => {
    const res = await fetch(`http://127.0.0.1:${sim.port}/_sim/config`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ faultRate: 2 }),
    });
    expect(res.status).toBe(400);
    expect(await admin(sim, "config")).toMatchObject({ faultRate: 0 });
  });

  it("never shows the API key in the config", async () => {
    const config = await admin<Record<string, unknown>>(sim, "config");
    expect(JSON.stringify(config)).not.toContain("sk-simulator-test-key");
    expect(config).toMatchObject({ apiKeyRequired: true });
  });
});
