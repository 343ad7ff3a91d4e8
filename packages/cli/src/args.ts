import { parseArgs, type ParseArgsConfig } from "node:util";
import { z } from "zod";
import { UsageError } from "./errors.js";

/** Flags every command takes. */
export interface GlobalFlags {
  json: boolean;
  /** --url, else TRACELANE_URL. */
  url?: string;
}

export type Command = GlobalFlags &
  (
    | {
        name: "research";
        query: string;
        wait: boolean;
        poll: boolean;
        maxCostUsd?: number;
        allowOverBudgetEstimate?: boolean;
        models: Record<string, string>;
        idempotencyKey?: string;
      }
    | { name: "status"; id: string }
    | { name: "researches"; params: URLSearchParams }
    | { name: "trace"; traceId: string }
    | { name: "traces"; params: URLSearchParams }
    | { name: "costs"; params: URLSearchParams }
    | { name: "what-if"; traceId?: string; params: URLSearchParams }
    | { name: "help"; text: string }
  );

type Options = NonNullable<ParseArgsConfig["options"]>;

const GLOBAL_OPTIONS = {
  json: { type: "boolean" },
  url: { type: "string" },
  help: { type: "boolean", short: "h" },
} satisfies Options;

const GLOBAL_HELP = `  --json                  machine output: the api's JSON body, unchanged
  --url <url>             the api (default: TRACELANE_URL, else http://127.0.0.1:3000)
  -h, --help              this help`;

export const EXIT_CODES_HELP = `Exit codes:
    0  ok
    1  the research failed or was cancelled (research --wait, status)
    2  usage error: unknown command or flag, bad value, or a request the api refused (4xx)
    3  the api is unreachable (nothing at TRACELANE_URL, or no answer in time)
    4  not found: no research or trace with that id
    5  the api answered with an error of its own (5xx; 503 while its Redis is down)
    6  the api refused the API key (401: set TRACELANE_API_KEY; 403: a member key for an admin's read)
  130  interrupted (Ctrl-C) while waiting
  141  the output pipe closed before the command finished (tracelane … | head)`;

interface CommandSpec {
  summary: string;
  usage: string;
  options: Options;
  build(values: Record<string, unknown>, positionals: string[], flags: GlobalFlags): Command;
}

// ----- values -------------------------------------------------------------------------------

const UNIT_MS = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 } as const;
const DURATION = /^(\d+(?:\.\d+)?)(ms|s|m|h|d|w)$/;

/** `1h`, `30m`, `7d`, `1.5h`, `500ms` as milliseconds; undefined for anything else. */
export function parseDuration(v: string): number | undefined {
  const m = DURATION.exec(v.trim());
  return m ? Number(m[1]) * UNIT_MS[m[2] as keyof typeof UNIT_MS] : undefined;
}

/**
 * A point in time for `since`/`until`: a duration back from now (`1h`, `7d`) becomes an ISO time;
 * an ISO time or epoch milliseconds goes to the api as it is (the api says what is wrong with it).
 */
const pointInTime = (now: number) =>
  z.string().transform((v, ctx) => {
    const ms = parseDuration(v);
    if (ms !== undefined) return new Date(now - ms).toISOString();
    if (/^\d{4}-\d{2}-\d{2}/.test(v) || /^\d{10,16}$/.test(v)) return v;
    ctx.addIssue({
      code: "custom",
      message: `must be a duration back from now such as 30m, 1h, 7d, or an ISO time such as 2026-12-02T09:00:00Z (got ${JSON.stringify(v)})`,
    });
    return z.NEVER;
  });

const nonNegative = (what: string) =>
  z.string().transform((v, ctx) => {
    const n = Number(v);
    if (v.trim() === "" || !Number.isFinite(n) || n < 0) {
      ctx.addIssue({ code: "custom", message: `must be ${what} (got ${JSON.stringify(v)})` });
      return z.NEVER;
    }
    return n;
  });

/** `--min-duration 2s` (or `1500ms`, or a bare number of ms) as milliseconds. */
const durationMs = z.string().transform((v, ctx) => {
  const ms = /^\d+(\.\d+)?$/.test(v) ? Number(v) : parseDuration(v);
  if (ms === undefined) {
    ctx.addIssue({ code: "custom", message: `must be a duration such as 2s, 1500ms or 1m (got ${JSON.stringify(v)})` });
    return z.NEVER;
  }
  return ms;
});

const positiveInt = z.string().transform((v, ctx) => {
  const n = Number(v);
  if (!/^\d+$/.test(v) || n < 1) {
    ctx.addIssue({ code: "custom", message: `must be a whole number of at least 1 (got ${JSON.stringify(v)})` });
    return z.NEVER;
  }
  return n;
});

const nonEmpty = z.string().trim().min(1, "must not be empty");

/** `--model analysis=gpt-4.1` (repeatable) as { analysis: "gpt-4.1" }. */
const modelAssignments = z
  .array(z.string())
  .default([])
  .transform((list, ctx) => {
    const out: Record<string, string> = {};
    for (const item of list) {
      const m = /^([^=\s]+)=(\S+)$/.exec(item.trim());
      if (!m) {
        ctx.addIssue({
          code: "custom",
          message: `must be <stage>=<model> such as factcheck=gemini-2.5-flash (got ${JSON.stringify(item)})`,
        });
        return z.NEVER;
      }
      out[m[1]!] = m[2]!;
    }
    return out;
  });

/** parseArgs values keyed as the schemas spell them (`min-cost` -> `minCost`). */
const camelCase = (values: Record<string, unknown>) =>
  Object.fromEntries(Object.entries(values).map(([k, v]) => [k.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase()), v]));

/**
 * Validate parsed flags with a zod schema; an issue becomes a usage error naming the flag, or
 * `<name>` for a positional (the `positionals` keys) and for a bare value (`bare`).
 */
function check<S extends z.ZodType>(
  schema: S,
  values: unknown,
  usage: string,
  names: { bare?: string; positionals?: string[] } = {},
): z.infer<S> {
  const result = schema.safeParse(values);
  if (result.success) return result.data;
  const issue = result.error.issues[0]!;
  const key = issue.path.length > 0 ? String(issue.path[0]) : undefined;
  const what =
    key === undefined
      ? (names.bare ?? "arguments")
      : names.positionals?.includes(key)
        ? `<${key}>`
        : `--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
  throw new UsageError(`${what}: ${issue.message}`, usage);
}

/** Exactly `names.length` positionals. */
function positionalsOf(positionals: string[], names: string[], usage: string): string[] {
  if (positionals.length < names.length) throw new UsageError(`missing ${names.slice(positionals.length).join(" ")}`, usage);
  if (positionals.length > names.length) {
    throw new UsageError(
      `unexpected argument ${JSON.stringify(positionals[names.length])}${names.includes("<query>") ? ' (quote the query: tracelane research "your question")' : ""}`,
      usage,
    );
  }
  return positionals;
}

/** Only the entries that are set, as query parameters. */
function queryParams(entries: Record<string, string | number | undefined>): URLSearchParams {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(entries)) if (v !== undefined) params.set(k, String(v));
  return params;
}

// ----- commands -----------------------------------------------------------------------------

function commands(now: number): Record<string, CommandSpec> {
  const research: CommandSpec = {
    summary: "submit a research query; --wait follows it stage by stage and prints the report",
    usage: `Usage: tracelane research "<query>" [--wait] [options]

Submits a research (POST /v1/research) and prints its id. With --wait, prints a line as each stage
starts and completes (over GET /v1/research/:id/events, polling if the stream is unavailable), then
the final report, the per-stage table and the links to its trace.

Options:
  --wait                  follow the research until it completes, fails or is cancelled
  --poll                  with --wait: poll GET /v1/research/:id instead of the event stream
  --max-cost <usd>        stop before a stage whose estimated cost exceeds what is left; below the
                          api's estimate (p50, printed on submit) the api refuses the research
  --allow-over-budget-estimate
                          submit even when --max-cost is below the estimate
  --model <stage>=<model> the model of one stage (repeatable), e.g. --model factcheck=gpt-4.1-mini
  --idempotency-key <k>   the same key and query return the same research (safe to retry)
${GLOBAL_HELP}`,
    options: {
      wait: { type: "boolean" },
      poll: { type: "boolean" },
      "max-cost": { type: "string" },
      "allow-over-budget-estimate": { type: "boolean" },
      model: { type: "string", multiple: true },
      "idempotency-key": { type: "string" },
    },
    build(values, positionals, flags) {
      const [query] = positionalsOf(positionals, ["<query>"], this.usage);
      const v = check(
        z.object({
          query: nonEmpty,
          wait: z.boolean().default(false),
          poll: z.boolean().default(false),
          maxCost: nonNegative("a number of USD greater than 0").optional(),
          allowOverBudgetEstimate: z.boolean().default(false),
          model: modelAssignments,
          idempotencyKey: nonEmpty.optional(),
        }),
        { query, ...camelCase(values) },
        this.usage,
        { positionals: ["query"] },
      );
      if (v.poll && !v.wait) throw new UsageError("--poll: only with --wait", this.usage);
      return {
        ...flags,
        name: "research",
        query: v.query,
        wait: v.wait,
        poll: v.poll,
        models: v.model,
        ...(v.maxCost !== undefined ? { maxCostUsd: v.maxCost } : {}),
        ...(v.allowOverBudgetEstimate ? { allowOverBudgetEstimate: true } : {}),
        ...(v.idempotencyKey !== undefined ? { idempotencyKey: v.idempotencyKey } : {}),
      };
    },
  };

  const status: CommandSpec = {
    summary: "a research's status, stages (model, tokens, cost, latency) and report",
    usage: `Usage: tracelane status <researchId>

Prints a research (GET /v1/research/:id): its status, one row per stage, its totals, its error if it
failed, and its report once completed. Exits 1 when the research failed or was cancelled.

Options:
${GLOBAL_HELP}`,
    options: {},
    build(_values, positionals, flags) {
      const [id] = positionalsOf(positionals, ["<researchId>"], this.usage);
      return { ...flags, name: "status", id: check(nonEmpty, id, this.usage, { bare: "<researchId>" }) };
    },
  };

  const researches: CommandSpec = {
    summary: "list researches, newest first, by status and time",
    usage: `Usage: tracelane researches [options]

Lists researches (GET /v1/research), newest first: status, stage, duration, cost, anomalies, query.
  e.g. tracelane researches --status failed --since 1h

Options:
  --status <status>       queued, running, completed, failed or cancelled
  --since <when>          created at or after: 30m, 1h, 7d (back from now), or an ISO time
  --until <when>          created at or before (same forms)
  --limit <n>             at most n researches (the api's default otherwise)
  --cursor <c>            the next page (printed under a full page)
${GLOBAL_HELP}`,
    options: {
      status: { type: "string" },
      since: { type: "string" },
      until: { type: "string" },
      limit: { type: "string" },
      cursor: { type: "string" },
    },
    build(values, positionals, flags) {
      positionalsOf(positionals, [], this.usage);
      const v = check(
        z
          .object({
            status: nonEmpty.optional(),
            since: pointInTime(now).optional(),
            until: pointInTime(now).optional(),
            limit: positiveInt.optional(),
            cursor: nonEmpty.optional(),
          })
          .strict(),
        camelCase(values),
        this.usage,
      );
      return { ...flags, name: "researches", params: queryParams(v) };
    },
  };

  const trace: CommandSpec = {
    summary: "replay a trace: one line per span, with models, tokens, cost and anomalies",
    usage: `Usage: tracelane trace <traceId>

Prints the replay of a trace (GET /v1/traces/:traceId/replay); --json prints the trace itself
(GET /v1/traces/:traceId: summary, span tree, anomalies, links).

Options:
${GLOBAL_HELP}`,
    options: {},
    build(_values, positionals, flags) {
      const [traceId] = positionalsOf(positionals, ["<traceId>"], this.usage);
      return { ...flags, name: "trace", traceId: check(nonEmpty, traceId, this.usage, { bare: "<traceId>" }) };
    },
  };

  const traces: CommandSpec = {
    summary: "list traces, newest first, filtered by time, cost, duration, anomaly, status, model",
    usage: `Usage: tracelane traces [options]

Lists traces (GET /v1/traces), newest first unless --sort says otherwise.
  e.g. tracelane traces --since 1h --min-cost 0.01 --anomaly high_latency

Options:
  --since <when>          started at or after: 30m, 1h, 7d (back from now), or an ISO time
  --until <when>          started at or before (same forms)
  --min-cost <usd>        costing at least this much, e.g. 0.01
  --min-duration <d>      lasting at least this long, e.g. 2s, 1500ms
  --anomaly <type>        with an anomaly of this type (high_latency, high_cost, error, retries...)
  --status <ok|error>     by outcome
  --model <model>         with a call to this model
  --kind <kind>           research (the api's default) or all
  --sort <start|cost|duration>
  --limit <n>             at most n traces (the api's default otherwise)
  --cursor <c>            the next page (printed under a full page)
${GLOBAL_HELP}`,
    options: {
      since: { type: "string" },
      until: { type: "string" },
      "min-cost": { type: "string" },
      "min-duration": { type: "string" },
      anomaly: { type: "string" },
      status: { type: "string" },
      model: { type: "string" },
      kind: { type: "string" },
      sort: { type: "string" },
      limit: { type: "string" },
      cursor: { type: "string" },
    },
    build(values, positionals, flags) {
      positionalsOf(positionals, [], this.usage);
      const v = check(
        z.object({
          since: pointInTime(now).optional(),
          until: pointInTime(now).optional(),
          minCost: nonNegative("a number of USD >= 0, such as 0.01").optional(),
          minDuration: durationMs.optional(),
          anomaly: nonEmpty.optional(),
          status: nonEmpty.optional(),
          model: nonEmpty.optional(),
          kind: nonEmpty.optional(),
          sort: nonEmpty.optional(),
          limit: positiveInt.optional(),
          cursor: nonEmpty.optional(),
        }),
        camelCase(values),
        this.usage,
      );
      return {
        ...flags,
        name: "traces",
        params: queryParams({
          since: v.since,
          until: v.until,
          minCostUsd: v.minCost,
          minDurationMs: v.minDuration,
          anomaly: v.anomaly,
          status: v.status,
          model: v.model,
          kind: v.kind,
          sort: v.sort,
          limit: v.limit,
          cursor: v.cursor,
        }),
      };
    },
  };

  const costs: CommandSpec = {
    summary: "cost, tokens, latency and error rate by stage and by model over a window",
    usage: `Usage: tracelane costs [--since 24h] [--until <when>]

Prints cost and tokens per stage and per model, with p50/p95 latency and error rate
(GET /v1/stats/costs). The window defaults to the last 24 hours.

Options:
  --since <when>          30m, 24h, 7d (back from now), or an ISO time
  --until <when>          same forms (default: now)
${GLOBAL_HELP}`,
    options: { since: { type: "string" }, until: { type: "string" } },
    build(values, positionals, flags) {
      positionalsOf(positionals, [], this.usage);
      const v = check(
        z.object({ since: pointInTime(now).optional(), until: pointInTime(now).optional() }).strict(),
        camelCase(values),
        this.usage,
      );
      return { ...flags, name: "costs", params: queryParams({ since: v.since, until: v.until }) };
    },
  };

  const whatIf: CommandSpec = {
    summary: "what a window's traces (or one trace) would have cost with some stages on other models",
    usage: `Usage: tracelane what-if --swap <stage>:<model> [--swap …] [--since 24h] [--until <when>] [--trace <traceId>]

Prices the recorded calls again with each swapped stage on another model: the same input, cached
input and output tokens at that model's rates (GET /v1/stats/what-if over every trace of the window
you may see, or GET /v1/traces/:traceId/what-if for one trace). Prints, per stage, the model and the
what-if model, actual and what-if cost, the saving and its share; then the calls that would not fit
the other model's context window, and what the figures assume.
  e.g. tracelane what-if --swap factcheck:deepseek-v3.2 --since 7d

Options:
  --swap <stage>:<model>  price that stage's calls on that model (repeatable, once per stage)
  --since <when>          traces started at or after: 30m, 24h, 7d (back from now), or an ISO time (default: 24h)
  --until <when>          same forms (default: now)
  --trace <traceId>       one trace instead of a window
  --kind <kind>           research (the api's default) or all
${GLOBAL_HELP}`,
    options: {
      swap: { type: "string", multiple: true },
      since: { type: "string" },
      until: { type: "string" },
      trace: { type: "string" },
      kind: { type: "string" },
    },
    build(values, positionals, flags) {
      positionalsOf(positionals, [], this.usage);
      const v = check(
        z
          .object({
            swap: z
              .array(z.string())
              .default([])
              .transform((list, ctx) => {
                if (list.length === 0) {
                  ctx.addIssue({ code: "custom", message: "give at least one, e.g. --swap factcheck:deepseek-v3.2" });
                  return z.NEVER;
                }
                for (const item of list) {
                  if (!/^[^:\s]+:\S+$/.test(item.trim())) {
                    ctx.addIssue({
                      code: "custom",
                      message: `must be <stage>:<model> such as factcheck:deepseek-v3.2 (got ${JSON.stringify(item)})`,
                    });
                    return z.NEVER;
                  }
                }
                return list.map((item) => item.trim());
              }),
            since: pointInTime(now).optional(),
            until: pointInTime(now).optional(),
            trace: nonEmpty.optional(),
            kind: nonEmpty.optional(),
          })
          .strict(),
        camelCase(values),
        this.usage,
      );
      if (v.trace !== undefined && (v.since !== undefined || v.until !== undefined || v.kind !== undefined)) {
        throw new UsageError("--trace: prices one trace, so it takes no --since, --until or --kind", this.usage);
      }
      const params = queryParams({ since: v.since, until: v.until, kind: v.kind });
      for (const swap of v.swap) params.append("swap", swap);
      return { ...flags, name: "what-if", ...(v.trace !== undefined ? { traceId: v.trace } : {}), params };
    },
  };

  return { research, status, researches, trace, traces, costs, "what-if": whatIf };
}

export function generalUsage(now = Date.now()): string {
  const specs = commands(now);
  const width = Math.max(...Object.keys(specs).map((n) => n.length));
  return `Usage: tracelane <command> [options]

The tracelane api from a terminal (TRACELANE_URL, default http://127.0.0.1:3000; TRACELANE_API_KEY
is sent as the API key when the api has keys).

Commands:
${Object.entries(specs)
  .map(([name, spec]) => `  ${name.padEnd(width)}  ${spec.summary}`)
  .join("\n")}

  tracelane research "What limits solid-state battery energy density?" --wait
  tracelane traces --since 1h --min-cost 0.01 --anomaly high_latency
  tracelane costs --since 24h --json | jq .byModel
  tracelane what-if --swap factcheck:deepseek-v3.2 --since 7d

Every command takes --json, --url and --help (tracelane <command> --help).

${EXIT_CODES_HELP}`;
}

/** argv (without node and the script) to a command; throws UsageError with the right usage text. */
export function parseCommand(argv: string[], env: Record<string, string | undefined>, now = Date.now()): Command {
  const specs = commands(now);
  const [name, ...rest] = argv;
  const base: GlobalFlags = { json: false, ...(env.TRACELANE_URL ? { url: env.TRACELANE_URL } : {}) };
  if (name === undefined) throw new UsageError("no command given", generalUsage(now));
  if (name === "--help" || name === "-h" || name === "help") {
    const topic = rest[0] !== undefined ? specs[rest[0]] : undefined;
    return { ...base, name: "help", text: topic ? topic.usage : generalUsage(now) };
  }
  const spec = Object.hasOwn(specs, name) ? specs[name] : undefined;
  if (!spec) {
    throw new UsageError(
      name.startsWith("-") ? `a command comes first, before ${name}` : `unknown command ${JSON.stringify(name)}`,
      generalUsage(now),
    );
  }
  let parsed;
  try {
    parsed = parseArgs({ args: rest, options: { ...GLOBAL_OPTIONS, ...spec.options }, allowPositionals: true, strict: true });
  } catch (err) {
    throw new UsageError(parseArgsMessage(err), spec.usage);
  }
  const { json, url, help, ...values } = parsed.values as Record<string, unknown> & { json?: boolean; url?: string; help?: boolean };
  if (help) return { ...base, name: "help", text: spec.usage };
  const flags: GlobalFlags = { json: json === true, ...(url !== undefined ? { url } : base.url !== undefined ? { url: base.url } : {}) };
  return spec.build(values, parsed.positionals, flags);
}

/** node:util's parseArgs messages, shortened to what a person needs. */
function parseArgsMessage(err: unknown): string {
  const code = (err as { code?: string }).code;
  const message = err instanceof Error ? err.message : String(err);
  if (code === "ERR_PARSE_ARGS_UNKNOWN_OPTION") {
    const flag = /'([^']+)'/.exec(message)?.[1];
    return `unknown option ${flag ?? message}`;
  }
  if (code === "ERR_PARSE_ARGS_INVALID_OPTION_VALUE") {
    const flag = /'(-[^']+)'/.exec(message)?.[1] ?? "an option";
    return message.includes("argument missing") ? `${flag.split(" ")[0]} needs a value` : message;
  }
  return message;
}
