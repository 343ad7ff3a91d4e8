import { z } from "zod";
import { invalidRequest } from "./errors.js";
import type { Random } from "./random.js";

/** `invalid_output`: a well-formed completion whose answer ignores the requested JSON schema (not JSON at all). */
export const FAULT_KINDS = ["429", "500", "503", "hang", "malformed", "context_length", "401", "invalid_output"] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];
export const FaultKindSchema = z.enum(FAULT_KINDS);

export const FAULT_HEADER = "x-sim-fault";

/** `[[sim:fault=<kind>;model=<name>;times=<n>]]` anywhere in a message. */
const DIRECTIVE_PATTERN = /\[\[sim:([^\]]*)\]\]/g;

export interface FaultDirective {
  /** The directive as written, e.g. `[[sim:fault=429;times=2]]`; the key of its `times` counter. */
  text: string;
  kind: FaultKind;
  /** Only requests for this model are affected. */
  model?: string;
  /** Only the first `times` matching requests fail. */
  times?: number;
}

export type FaultSource = "header" | "directive" | "rate";

export interface SelectedFault {
  kind: FaultKind;
  source: FaultSource;
}

export function isFaultKind(value: string): value is FaultKind {
  return (FAULT_KINDS as readonly string[]).includes(value);
}

function unknownKind(kind: string, where: string) {
  return invalidRequest(`Unknown simulator fault '${kind}' in ${where}; expected one of ${FAULT_KINDS.join(", ")}.`);
}

/** Every directive in `texts`, in order. A malformed directive is a 400, so typos do not pass silently. */
export function parseDirectives(texts: Iterable<string>): FaultDirective[] {
  const directives: FaultDirective[] = [];
  for (const text of texts) {
    for (const match of text.matchAll(DIRECTIVE_PATTERN)) {
      directives.push(parseDirective(match[0], match[1] ?? ""));
    }
  }
  return directives;
}

function parseDirective(text: string, body: string): FaultDirective {
  let kind: FaultKind | undefined;
  let model: string | undefined;
  let times: number | undefined;
  for (const option of body.split(";")) {
    const eq = option.indexOf("=");
    const key = (eq === -1 ? option : option.slice(0, eq)).trim();
    const value = eq === -1 ? "" : option.slice(eq + 1).trim();
    if (key === "" && value === "") continue;
    if (key === "fault") {
      if (!isFaultKind(value)) throw unknownKind(value, text);
      kind = value;
    } else if (key === "model" && value !== "") {
      model = value;
    } else if (key === "times" && /^\d+$/.test(value) && Number(value) >= 1) {
      times = Number(value);
    } else {
      throw invalidRequest(
        `Invalid simulator directive ${text}: cannot use '${option}'. Syntax: [[sim:fault=<kind>;model=<model>;times=<n>]].`,
      );
    }
  }
  if (kind === undefined) throw invalidRequest(`Invalid simulator directive ${text}: 'fault=<kind>' is required.`);
  return { text, kind, ...(model === undefined ? {} : { model }), ...(times === undefined ? {} : { times }) };
}

/** Remove directives so they never show up in generated text. */
export function stripDirectives(text: string): string {
  return text.replace(DIRECTIVE_PATTERN, " ");
}

/** How often each `times`-limited directive has fired, per (directive text, model). In memory only. */
export class DirectiveCounters {
  private readonly fired = new Map<string, number>();

  /** Counts a matching request; true while the directive still has failures left. */
  take(directive: FaultDirective, model: string): boolean {
    if (directive.times === undefined) return true;
    const key = `${directive.text}\u0000${model}`;
    const count = this.fired.get(key) ?? 0;
    if (count >= directive.times) return false;
    this.fired.set(key, count + 1);
    return true;
  }

  reset(): void {
    this.fired.clear();
  }
}

/** A fault asked for by the request itself: the `x-sim-fault` header first, then message directives. */
export function requestedFault(input: {
  header: string | undefined;
  directives: readonly FaultDirective[];
  model: string;
  counters: DirectiveCounters;
}): SelectedFault | undefined {
  const header = input.header?.trim();
  if (header) {
    if (!isFaultKind(header)) throw unknownKind(header, `the ${FAULT_HEADER} header`);
    return { kind: header, source: "header" };
  }
  for (const directive of input.directives) {
    if (directive.model !== undefined && directive.model !== input.model) continue;
    if (input.counters.take(directive, input.model)) return { kind: directive.kind, source: "directive" };
  }
  return undefined;
}

/** A random fault from `kinds` with probability `rate`. */
export function rateFault(rate: number, kinds: readonly FaultKind[], random: Random): SelectedFault | undefined {
  if (rate <= 0 || kinds.length === 0) return undefined;
  if (random() >= rate) return undefined;
  const kind = kinds[Math.floor(random() * kinds.length)];
  return kind === undefined ? undefined : { kind, source: "rate" };
}
