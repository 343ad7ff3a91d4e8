import { createHash } from "node:crypto";
import { stripDirectives } from "./faults.js";
import { intBetween, pick, seededRandom, type Random } from "./random.js";
import { countTokens, truncateToTokens } from "./tokens.js";

/** A chat message reduced to what generation and token counting read. */
export interface PromptMessage {
  role: string;
  text: string;
}

/** The request fingerprint everything deterministic derives from: model + messages. */
export function requestDigest(model: string, messages: readonly PromptMessage[]): Buffer {
  return createHash("sha256")
    .update(JSON.stringify([model, messages.map((m) => [m.role, m.text])]))
    .digest();
}

const ID_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/** `chatcmpl-` + 29 alphanumerics, like OpenAI's ids, fixed for a given digest. */
export function completionId(digest: Buffer): string {
  let id = "chatcmpl-";
  for (let i = 0; i < 29; i++) id += ID_ALPHABET[(digest[i] ?? 0) % ID_ALPHABET.length];
  return id;
}

export type Flavour = "research" | "claims" | "verify" | "synthesis";

/** The system prompt steers the shape of the text: verification, claim lists, a synthesis, or research notes. */
export function flavourFor(systemText: string): Flavour {
  const text = systemText.toLowerCase();
  // A report writer reads fact-check notes too, so "final report" wins over "fact-check".
  if (/final report|synthes/.test(text)) return "synthesis";
  if (/\bverif/.test(text) || /fact-?check/.test(text)) return "verify";
  if (/\bclaims?\b/.test(text)) return "claims";
  if (/synthes|\breport\b/.test(text)) return "synthesis";
  return "research";
}

const STOPWORDS = new Set(
  (
    "the and for are but not you all any can had her was one our out has have him his how its may new now old see two way who " +
    "did get let put say she too use that with this from they will would there their what about which when make like time just " +
    "know take into year your some could them than then look only come over think also back after work first well even want " +
    "because these give most been were more very much such does should other being those while where here each many before " +
    "between through during without within upon please tell explain describe write give list summarize summarise research " +
    "question answer topic provide using based following"
  ).split(" "),
);

const FALLBACK_WORDS = ["evidence", "outcomes", "methodology", "cohort", "variance", "replication", "baseline"];

/** Distinct content words of `text`, in order of appearance, directives removed. */
export function topicWords(text: string): string[] {
  const seen = new Set<string>();
  for (const match of stripDirectives(text).matchAll(/\p{L}[\p{L}\p{N}'-]*/gu)) {
    const word = match[0].toLowerCase().replace(/['-]+$/, "");
    if (word.length < 3 || STOPWORDS.has(word)) continue;
    seen.add(word);
  }
  const words = [...seen];
  for (const filler of FALLBACK_WORDS) {
    if (words.length >= 3) break;
    if (!seen.has(filler)) words.push(filler);
  }
  return words;
}

interface Vocabulary {
  random: Random;
  words: readonly string[];
  topic: string;
}

const capitalize = (s: string) => (s.length === 0 ? s : s[0]!.toUpperCase() + s.slice(1));

/** Fill `{a}` `{b}` `{c}` (topic words; `{A}` capitalised), `{n}`, `{pct}`, `{year}`, `{es}`, `{src}`, `{topic}`. */
function fill(template: string, v: Vocabulary): string {
  const r = v.random;
  const words = new Map<string, string>();
  const word = (slot: string) => {
    let w = words.get(slot);
    if (w === undefined) {
      const used = new Set(words.values());
      const fresh = v.words.filter((candidate) => !used.has(candidate));
      w = pick(r, fresh.length > 0 ? fresh : v.words);
      words.set(slot, w);
    }
    return w;
  };
  return template.replace(/\{(\w+)\}/g, (_, slot: string) => {
    switch (slot) {
      case "A":
        return capitalize(word("a"));
      case "a":
      case "b":
      case "c":
        return word(slot);
      case "n":
        return String(intBetween(r, 3, 24));
      case "pct":
        return `${intBetween(r, 5, 68)}%`;
      case "year":
        return String(intBetween(r, 2012, 2025));
      case "es":
        return (0.05 + r() * 0.7).toFixed(2);
      case "src":
        return `S${intBetween(r, 1, 12)}`;
      case "topic":
        return v.topic;
      default:
        return slot;
    }
  });
}

const FINDINGS = [
  "{A} is associated with measurable changes in {b} across {n} of the studies reviewed.",
  "Evidence on {a} remains mixed: several sources report gains in {b}, while others find no reliable effect.",
  "A {year} meta-analysis covering {n} trials estimated a pooled effect of {es} for {a} on {b}.",
  "The strongest data on {a} come from longitudinal cohorts, which link it to a {pct} shift in {b}.",
  "Confounding by {b} limits causal claims about {a}; most designs cannot separate the two.",
  "Studies that measured {a} directly report smaller effects than those that inferred it from {b}.",
  "Heterogeneity is high (I² above {pct}), largely explained by differences in how {c} was defined.",
  "Where {c} was controlled for, the relationship between {a} and {b} weakened but did not disappear.",
  "Replication attempts since {year} have confirmed the direction of the {a} effect but not its size.",
  "Small samples dominate the literature on {a}, so estimates for {b} carry wide confidence intervals.",
  "Industry-funded work on {a} reports effects roughly {pct} larger than independent studies.",
  "No study so far has tested {a} and {c} together, which leaves the interaction with {b} open.",
];

const OPENINGS = [
  "This summary covers what current sources say about {topic} and how strong that evidence is.",
  "The question concerns {topic}; the notes below separate well-supported findings from weaker ones.",
  "Available work on {topic} spans observational data, a few trials and several reviews.",
];

const CLAIMS = [
  "{A} increases {b} under typical conditions [{src}].",
  "The effect of {a} on {b} is larger when {c} is low [{src}].",
  "Since {year}, reported rates of {a} have risen by about {pct} [{src}].",
  "{A} and {b} share common drivers, chiefly {c} [{src}].",
  "Interventions targeting {a} reduce {b} by roughly {pct} within one year [{src}].",
  "There is no consistent evidence that {a} affects {c} [{src}].",
  "Estimates of the {a} effect vary mainly with study design, not population [{src}].",
  "About {n} independent groups have replicated the core {a} finding [{src}].",
];

const VERDICTS = ["Supported", "Partially supported", "Unsupported", "Unverifiable"] as const;

const REASONS: Record<(typeof VERDICTS)[number], readonly string[]> = {
  Supported: [
    "Multiple independent sources agree, including a {year} review of {n} studies.",
    "The figure matches primary data on {b} within the reported margin.",
  ],
  "Partially supported": [
    "The direction holds, but the magnitude for {b} is overstated by about {pct}.",
    "Sources agree only when {c} is held constant.",
  ],
  Unsupported: ["The cited work on {a} reports the opposite direction for {b}.", "No source located links {a} to {b} at the stated size."],
  Unverifiable: [
    "The original data on {a} are not public, so the claim cannot be checked.",
    "Only a single unreplicated study from {year} addresses it.",
  ],
};

const SECTION_TITLES = ["Background", "What the evidence shows", "Points of disagreement", "Gaps and next steps"];

function* researchPieces(v: Vocabulary): Generator<string> {
  yield `Research notes: ${v.topic}.\n\n`;
  yield fill(pick(v.random, OPENINGS), v);
  yield ` ${fill(pick(v.random, FINDINGS), v)}\n\nKey findings:`;
  for (let i = 1; ; i++) yield `\n${i}. ${fill(pick(v.random, FINDINGS), v)}`;
}

function* claimPieces(v: Vocabulary): Generator<string> {
  yield `Claims about ${v.topic}:`;
  for (let i = 1; ; i++) yield `\n${i}. ${fill(pick(v.random, CLAIMS), v)}`;
}

function* verifyPieces(v: Vocabulary): Generator<string> {
  yield `Verification of claims about ${v.topic}:`;
  for (let i = 1; ; i++) {
    const verdict = pick(v.random, VERDICTS);
    const confidence = (0.55 + v.random() * 0.44).toFixed(2);
    yield (
      `\n${i}. "${fill(pick(v.random, CLAIMS), v).replace(/ \[S\d+\]\.$/, ".")}" ` +
      `Verdict: ${verdict} (confidence ${confidence}). ${fill(pick(v.random, REASONS[verdict]), v)}`
    );
  }
}

function* synthesisPieces(v: Vocabulary): Generator<string> {
  yield `## ${capitalize(v.topic)}\n\n`;
  yield fill(pick(v.random, OPENINGS), v);
  for (let section = 0; ; section++) {
    yield `\n\n### ${SECTION_TITLES[section % SECTION_TITLES.length]}\n\n${fill(pick(v.random, FINDINGS), v)}`;
    const sentences = intBetween(v.random, 2, 4);
    for (let i = 0; i < sentences; i++) yield ` ${fill(pick(v.random, FINDINGS), v)}`;
  }
}

const PIECES: Record<Flavour, (v: Vocabulary) => Generator<string>> = {
  research: researchPieces,
  claims: claimPieces,
  verify: verifyPieces,
  synthesis: synthesisPieces,
};

export interface GenerationInput {
  digest: Buffer;
  messages: readonly PromptMessage[];
  /** Range of the completion length in tokens; the exact length is fixed per request. */
  minTokens: number;
  maxTokens: number;
}

/**
 * Plausible research prose built from the words of the last user message, shaped by
 * the system prompt, with its o200k token count. Same digest and messages, same text.
 */
export function generateContent(input: GenerationInput): { text: string; tokens: number } {
  const random = seededRandom(input.digest.readUInt32LE(0));
  const system = input.messages
    .filter((m) => m.role === "system" || m.role === "developer")
    .map((m) => m.text)
    .join("\n");
  const lastUser = [...input.messages].reverse().find((m) => m.role === "user")?.text ?? "";
  const words = topicWords(lastUser);
  const vocabulary: Vocabulary = { random, words, topic: words.slice(0, 3).join(" ") };
  const target = intBetween(random, input.minTokens, input.maxTokens);

  let text = "";
  let tokens = 0;
  for (const piece of PIECES[flavourFor(system)](vocabulary)) {
    const pieceTokens = countTokens(piece);
    if (tokens + pieceTokens > input.maxTokens) {
      // The next piece would overshoot: stop at the last whole piece when that is long enough.
      if (tokens < input.minTokens) text += truncateToTokens(piece, target - tokens);
      break;
    }
    text += piece;
    tokens += pieceTokens;
    if (tokens >= target) break;
  }
  // Per-piece counts are close to, not exactly, the count of the joined text.
  text = text.trimEnd();
  const exact = countTokens(text);
  if (exact <= input.maxTokens) return { text, tokens: exact };
  text = truncateToTokens(text, input.maxTokens);
  return { text, tokens: countTokens(text) };
}
