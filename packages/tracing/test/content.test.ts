import { trace } from "@opentelemetry/api";
import { EnvError } from "@tracelane/runtime";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { captureContent, contentCaptureMode, redactSecrets, withChatSpan } from "../src/index.js";
import { useInMemoryTracing, type InMemoryTracing } from "../src/testing.js";
import { ATTR_GEN_AI_INPUT_MESSAGES, ATTR_GEN_AI_OUTPUT_MESSAGES } from "@tracelane/tracing/attributes";

const input = [
  { role: "system", content: "You are terse." },
  { role: "user", content: "Mail jane.doe@example.com or call +1 415-555-0100; key sk-proj-AbCdEf0123456789XyZ" },
];

describe("content capture", () => {
  let tracing: InMemoryTracing;
  beforeAll(() => {
    tracing = useInMemoryTracing();
  });
  beforeEach(() => tracing.reset());
  afterAll(() => tracing.shutdown());

  async function chatWith(mode: ReturnType<typeof contentCaptureMode>) {
    await withChatSpan({ model: "m", provider: "openai" }, async (span) =>
      captureContent(span, { input, output: "ok, jane.doe@example.com" }, mode),
    );
    return tracing.spanNamed("chat m").attributes;
  }

  it("is off unless TRACELANE_CAPTURE_CONTENT asks for it", async () => {
    expect(contentCaptureMode({})).toBe("none");
    expect(contentCaptureMode({ TRACELANE_CAPTURE_CONTENT: "" })).toBe("none");
    const attributes = await chatWith(contentCaptureMode({}));
    expect(attributes[ATTR_GEN_AI_INPUT_MESSAGES]).toBeUndefined();
    expect(attributes[ATTR_GEN_AI_OUTPUT_MESSAGES]).toBeUndefined();
  });

  it("records GenAI input and output messages verbatim in full mode", async () => {
    const attributes = await chatWith(contentCaptureMode({ TRACELANE_CAPTURE_CONTENT: "full" }));
    expect(JSON.parse(String(attributes[ATTR_GEN_AI_INPUT_MESSAGES]))).toEqual([
      { role: "system", parts: [{ type: "text", content: "You are terse." }] },
      { role: "user", parts: [{ type: "text", content: input[1]?.content }] },
    ]);
    expect(JSON.parse(String(attributes[ATTR_GEN_AI_OUTPUT_MESSAGES]))).toEqual([
      { role: "assistant", parts: [{ type: "text", content: "ok, jane.doe@example.com" }], finish_reason: "stop" },
    ]);
  });

  it("masks the e-mail, the phone number and the sk- key in redacted mode", async () => {
    const attributes = await chatWith("redacted");
    const recorded = `${String(attributes[ATTR_GEN_AI_INPUT_MESSAGES])}${String(attributes[ATTR_GEN_AI_OUTPUT_MESSAGES])}`;
    expect(recorded).not.toContain("jane.doe@example.com");
    expect(recorded).not.toContain("555-0100");
    expect(recorded).not.toContain("sk-proj-AbCdEf0123456789XyZ");
    expect(recorded).toContain("[REDACTED_EMAIL]");
    expect(recorded).toContain("[REDACTED_PHONE]");
    expect(recorded).toContain("[REDACTED_SECRET]");
    expect(recorded).toContain("You are terse.");
  });

  it("fails at boot naming the variable for an unknown mode", () => {
    expect(() => contentCaptureMode({ TRACELANE_CAPTURE_CONTENT: "everything" })).toThrow(EnvError);
    expect(() => contentCaptureMode({ TRACELANE_CAPTURE_CONTENT: "everything" })).toThrow(/TRACELANE_CAPTURE_CONTENT/);
  });

  it("does nothing on a span that is not recording", () => {
    const span = trace.wrapSpanContext({ traceId: "4bf92f3577b34da6a3ce929d0e0e4736", spanId: "00f067aa0ba902b7", traceFlags: 0 });
    expect(() => captureContent(span, { input }, "full")).not.toThrow();
  });
});

describe("redactSecrets", () => {
  it.each([
    ["an e-mail address", "write to ops+alerts@mail.example.co.uk today", "write to [REDACTED_EMAIL] today"],
    ["a US phone number", "call (415) 555-0100 now", "call [REDACTED_PHONE] now"],
    ["an international phone number", "call +44 20 7946 0958 now", "call [REDACTED_PHONE] now"],
    ["an unformatted E.164 number", "sms +4915112345678", "sms [REDACTED_PHONE]"],
    ["an OpenAI key", "key sk-proj-AbCdEf0123456789XyZ_abc", "key [REDACTED_SECRET]"],
    ["a Bearer token", "Authorization: Bearer abc.def-ghi_jkl012", "Authorization: Bearer [REDACTED_SECRET]"],
    ["an AWS access key id", "AKIAIOSFODNN7EXAMPLE is mine", "[REDACTED_SECRET] is mine"],
    ["an AWS secret key", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "[REDACTED_SECRET]"],
    ["a long hex secret", "hmac 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", "hmac [REDACTED_SECRET]"],
    ["a short key (the canary: 15 characters after sk-)", "use sk-canary-7f3e9a1c here", "use [REDACTED_SECRET] here"],
    ["an Anthropic key", "ANTHROPIC sk-ant-api03-Xy9_abcdefghijklmnop-QRS", "ANTHROPIC [REDACTED_SECRET]"],
    ["a service-account key", "(sk-svcacct-0aB1cD2eF3gH4iJ5)", "([REDACTED_SECRET])"],
    ["a Google API key", "maps key AIzaSyA1b2C3d4E5f6G7h8I9j0KlMnOpQrStUvW.", "maps key [REDACTED_SECRET]."],
    ["a Stripe secret key", "sk_live_4eC39HqLyjWDarjtT1zdp7dc", "[REDACTED_SECRET]"],
    [
      "a JWT",
      "token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U end",
      "token [REDACTED_SECRET] end",
    ],
    ["a card number in groups", "card 4111 1111 1111 1111 exp 12/29", "card [REDACTED_CARD] exp 12/29"],
    ["a card number with dashes", "paid with 5555-5555-5555-4444.", "paid with [REDACTED_CARD]."],
    ["a bare card number", "pan=4012888888881881", "pan=[REDACTED_CARD]"],
    [
      "a key=value secret",
      'config api_key="abc123" and password: hunter2',
      'config api_key="[REDACTED_SECRET]" and password: [REDACTED_SECRET]',
    ],
  ])("masks %s", (_what, text, expected) => {
    expect(redactSecrets(text)).toBe(expected);
  });

  it.each([
    ["dates", "published 2024-01-15, revised 2024-03-02"],
    ["counts and years", "In 2023 the model saw 1,234,567 tokens and 42 tools"],
    ["ordinary prose and paths", "See docs/gen-ai/gen-ai-spans.md for the semantic conventions of GenAI"],
    ["a version string", "node v20.19.2 and openai 6.49.0"],
    ["a 16-digit number that fails Luhn (an order id)", "order 4111111111111112 shipped"],
    ["an epoch-ms timestamp", "at 1764666000000 it finished"],
    ["a word starting with sk-", "the sk-learn and sk-hynix-chips names"],
  ])("leaves %s alone", (_what, text) => {
    expect(redactSecrets(text)).toBe(text);
  });

  // Quadratic rules took 64-117 s on 200,000 characters of one letter or digit; linear ones take milliseconds,
  // so a regression fails here on the test timeout, not on a timing assertion.
  it.each([
    ["letters (all hex: one secret)", "a".repeat(1_000_000), "[REDACTED_SECRET]"],
    ["hex ending in a non-hex letter", `${"a".repeat(1_000_000)}g`, null],
    ["digits (a long number: one secret)", "1".repeat(1_000_000), "[REDACTED_SECRET]"],
    ["letter-at pairs", "a@".repeat(500_000), null],
    ["digit-dash pairs", "1-".repeat(500_000), null],
    ["a secret key name followed by spaces", `token${" ".repeat(1_000_000)}`, null],
  ])("redacts a million characters of %s in linear time", (_what, text, expected) => {
    expect(redactSecrets(text)).toBe(expected ?? text);
  });

  it("still finds a secret at the end of a million-character run", () => {
    expect(redactSecrets(`${"x".repeat(1_000_000)} sk-canary-7f3e9a1c`)).toBe(`${"x".repeat(1_000_000)} [REDACTED_SECRET]`);
  });
});
