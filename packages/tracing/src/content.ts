import type { Span } from "@opentelemetry/api";
import { parseEnv } from "@tracelane/runtime";
import { z } from "zod";
import { ATTR_GEN_AI_INPUT_MESSAGES, ATTR_GEN_AI_OUTPUT_MESSAGES } from "./attributes.js";

/**
 * Prompt/completion capture, opt-in per the GenAI conventions:
 * - `none` (default): no message text on spans;
 * - `full`: text as sent and received;
 * - `redacted`: text with e-mail addresses, phone numbers and key-like strings masked.
 */
export const CONTENT_CAPTURE_MODES = ["none", "full", "redacted"] as const;
export type ContentCaptureMode = (typeof CONTENT_CAPTURE_MODES)[number];

const schema = z.object({
  TRACELANE_CAPTURE_CONTENT: z.preprocess(
    (v) => (typeof v === "string" && v.trim() === "" ? undefined : v),
    z.enum(CONTENT_CAPTURE_MODES).default("none"),
  ),
});

/** The capture mode the environment asks for; throws EnvError on an unknown value. */
export function contentCaptureMode(env: Record<string, string | undefined> = process.env): ContentCaptureMode {
  return parseEnv(schema, env).TRACELANE_CAPTURE_CONTENT;
}

// Resolved once: by startTracing (from its env), else lazily from process.env on first capture.
let configuredMode: ContentCaptureMode | undefined;

/** Set the process-wide capture mode (startTracing does this from its validated env). */
export function configureContentCapture(mode: ContentCaptureMode): void {
  configuredMode = mode;
}

export function activeContentCaptureMode(): ContentCaptureMode {
  configuredMode ??= contentCaptureMode(process.env);
  return configuredMode;
}

export interface ChatMessage {
  role: string;
  content: string;
}

export interface CapturedContent {
  input?: ChatMessage[];
  output?: string;
  /** Finish reason of the output message (GenAI output-message schema); default "stop". */
  finishReason?: string;
}

/**
 * Record prompt and completion on a GenAI span as `gen_ai.input.messages` /
 * `gen_ai.output.messages` (JSON, GenAI semconv message schema), only when
 * capture is on. `mode` defaults to the process-wide setting.
 */
export function captureContent(span: Span, content: CapturedContent, mode: ContentCaptureMode = activeContentCaptureMode()): void {
  if (mode === "none" || !span.isRecording()) return;
  const text = mode === "redacted" ? redactSecrets : (s: string) => s;
  if (content.input) {
    const messages = content.input.map((m) => ({ role: m.role, parts: [{ type: "text", content: text(m.content) }] }));
    span.setAttribute(ATTR_GEN_AI_INPUT_MESSAGES, JSON.stringify(messages));
  }
  if (content.output !== undefined) {
    const messages = [
      { role: "assistant", parts: [{ type: "text", content: text(content.output) }], finish_reason: content.finishReason ?? "stop" },
    ];
    span.setAttribute(ATTR_GEN_AI_OUTPUT_MESSAGES, JSON.stringify(messages));
  }
}

/** Luhn's check digit: tells a card number from any other 13-19 digit run (order ids, timestamps). */
function luhnValid(digits: string): boolean {
  let sum = 0;
  for (let i = 0; i < digits.length; i++) {
    let d = digits.charCodeAt(digits.length - 1 - i) - 48;
    if (i % 2 === 1) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
  }
  return sum % 10 === 0;
}

// Characters a token is made of: a rule may only start where the previous character is not one
// of them. That lookbehind is what keeps every rule linear: an unanchored `[…]+@` tried at every
// offset of a 200,000-character run is quadratic (it took minutes), tried only at run starts it is not.
const NOT_AFTER_TOKEN = "(?<![A-Za-z0-9_-])";
const rule = (source: string, flags = "g") => new RegExp(source, flags);

/**
 * Ordered: specific secret shapes first, so a Bearer token is not half-eaten
 * by the generic base64 rule and reported under the wrong label. Every repetition is bounded or
 * starts at a token boundary (see NOT_AFTER_TOKEN): the text is untrusted model input and output.
 */
const REDACTIONS: Array<[RegExp, string | ((match: string, ...groups: string[]) => string)]> = [
  // Authorization header values.
  [/\b(Bearer|Basic)\s{1,8}[A-Za-z0-9._~+/=-]{8,}/gi, (_m, scheme) => `${scheme} [REDACTED_SECRET]`],
  // key=value / "key": "value" pairs whose key names a secret.
  [
    /\b((?:api[_-]?key|apikey|secret|client[_-]?secret|password|passwd|token|access[_-]?token|access[_-]?key|private[_-]?key)["']?\s{0,8}[:=]\s{0,8}["']?)[^\s"',;}]+/gi,
    (_m, prefix) => `${prefix}[REDACTED_SECRET]`,
  ],
  // Provider keys: OpenAI sk-… / sk-proj-… / sk-svcacct-…, Anthropic sk-ant-…, DeepSeek sk-…: 10+ characters
  // after "sk-" with a digit among them (a real key always has one; "sk-learn" has none).
  [rule(`${NOT_AFTER_TOKEN}sk-[A-Za-z0-9_-]{10,}`), (m) => (/\d/.test(m) ? "[REDACTED_SECRET]" : m)],
  // Google API keys.
  [rule(`${NOT_AFTER_TOKEN}AIza[0-9A-Za-z_-]{30,}`), "[REDACTED_SECRET]"],
  // GitHub, Slack, Stripe-style.
  [rule(`${NOT_AFTER_TOKEN}(?:(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{30,})`), "[REDACTED_SECRET]"],
  [rule(`${NOT_AFTER_TOKEN}xox[abposr]-[A-Za-z0-9-]{10,}`), "[REDACTED_SECRET]"],
  [rule(`${NOT_AFTER_TOKEN}(?:rk|pk|sk)_(?:live|test)_[A-Za-z0-9]{16,}`), "[REDACTED_SECRET]"],
  // JWTs.
  [rule(`${NOT_AFTER_TOKEN}eyJ[A-Za-z0-9_-]{8,}\\.[A-Za-z0-9_-]{8,}\\.[A-Za-z0-9_-]{8,}`), "[REDACTED_SECRET]"],
  // AWS access key ids (the 40-char secret falls to the base64 rule below).
  [/\b(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA)[0-9A-Z]{16}\b/g, "[REDACTED_SECRET]"],
  // E-mail: local part at most 64 characters (RFC 5321) and starting at a token boundary.
  [
    /(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63}){0,8}\.[A-Za-z]{2,24}(?![A-Za-z])/g,
    "[REDACTED_EMAIL]",
  ],
  // Payment card numbers: 13-19 digits, optionally grouped by spaces or dashes, passing Luhn.
  [/(?<![\d+-])\d(?:[ -]?\d){12,18}(?![\d-])/g, (m) => (luhnValid(m.replace(/[ -]/g, "")) ? "[REDACTED_CARD]" : m)],
  // Phone numbers: +CC digits, or grouped digits such as (415) 555-0100, 415-555-0100, +44 20 7946 0958.
  // Needs separators between groups so plain numbers, years and ISO dates (2024-01-15) survive.
  [/(?<![\w+])\+\d{8,15}\b/g, "[REDACTED_PHONE]"],
  [/(?<![\w+-])(?:\+\d{1,3}[ .-]?)?(?:\(\d{2,4}\)[ .-]?|\d{2,4}[ .-])\d{3,4}[ .-]?\d{3,4}(?![\w-])/g, "[REDACTED_PHONE]"],
  // Long hex strings (tokens, HMACs, private keys).
  [/\b[0-9a-fA-F]{32,}\b/g, "[REDACTED_SECRET]"],
  // Long base64/base64url runs that mix digits and letters (a long English word or path does not).
  [/[A-Za-z0-9+/_-]{32,}={0,2}/g, (m) => (/\d/.test(m) && /[a-z]/.test(m) && /[A-Z]/.test(m) ? "[REDACTED_SECRET]" : m)],
];

/** Mask e-mail addresses, phone and card numbers and key-like strings in free text, in time linear in its length. */
export function redactSecrets(text: string): string {
  let out = text;
  for (const [pattern, replacement] of REDACTIONS) {
    out = typeof replacement === "string" ? out.replace(pattern, replacement) : out.replace(pattern, replacement);
  }
  return out;
}
