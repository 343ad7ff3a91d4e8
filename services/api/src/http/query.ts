import { z } from "zod";
import { HttpError } from "./errors.js";

/**
 * Query parameters of the read routes, one definition for all of them: each parameter is a zod
 * schema that parses the raw string and carries its documentation (`.meta`, read by the OpenAPI
 * document), and `defineQuery` turns a shape into a strict parser whose errors are 400
 * `invalid_query` naming each bad parameter.
 */

/** How a parameter is described in the OpenAPI document (JSON Schema of its string form, plus a description). */
interface ParamDoc {
  description: string;
  type: "string" | "number" | "integer";
  format?: string;
  enum?: readonly string[];
  minimum?: number;
  maximum?: number;
  maxLength?: number;
  default?: number | string;
}

/**
 * One query parameter: a string given at most once ("" counts as absent), then parsed by `parse`,
 * which reports problems on `ctx` and returns z.NEVER.
 */
const param = <T>(doc: ParamDoc, parse: (v: string, ctx: z.RefinementCtx) => T) =>
  z
    .unknown()
    .transform((v, ctx): T | undefined => {
      if (v === undefined || v === "") return undefined;
      if (Array.isArray(v)) {
        ctx.addIssue({ code: "custom", message: `must be given once (got ${v.length} values)` });
        return z.NEVER;
      }
      if (typeof v !== "string") {
        ctx.addIssue({ code: "custom", message: "must be a single plain value" });
        return z.NEVER;
      }
      return parse(v, ctx);
    })
    .optional()
    .meta({ ...doc });

const shown = (v: string) => JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v);

/**
 * ISO 8601 as people write it: a date (UTC midnight) or a date-time with Z or an offset. A time
 * without an offset is refused: the server's time zone is not the caller's. Date.parse alone would
 * also take "June 1" or "1/2/3".
 */
const ISO_TIME = /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2}))?$/i;
const EPOCH_MS = /^\d{1,16}$/;
/** The largest instant a JavaScript Date holds (year 275760); past it, `new Date(ms)` is invalid. */
const MAX_DATE_MS = 8.64e15;

/** A `since`/`until`: ISO 8601 or epoch milliseconds, as epoch milliseconds (undefined when it is neither). */
export function parseTime(v: string): number | undefined {
  if (EPOCH_MS.test(v)) return Number(v) <= MAX_DATE_MS ? Number(v) : undefined;
  if (!ISO_TIME.test(v)) return undefined;
  const ms = Date.parse(v);
  // V8 rolls 2025-02-30 over to March 2; a date that does not exist is a typo.
  const day = v.slice(0, 10);
  return Number.isNaN(ms) || new Date(Date.parse(day)).toISOString().slice(0, 10) !== day ? undefined : ms;
}

/** ISO 8601 (a date is its UTC midnight; a time needs Z or an offset) or epoch milliseconds. */
export const timeParam = (description: string) =>
  param({ description: `${description}: ISO 8601 (2025-06-01, 2025-06-01T12:00:00Z) or epoch milliseconds`, type: "string" }, (v, ctx) => {
    const ms = parseTime(v);
    if (ms === undefined && EPOCH_MS.test(v)) {
      ctx.addIssue({ code: "custom", message: `must be epoch milliseconds up to ${MAX_DATE_MS} (the year 275760) (got ${shown(v)})` });
      return z.NEVER;
    }
    if (ms === undefined) {
      ctx.addIssue({
        code: "custom",
        message: `must be an ISO 8601 time such as 2025-06-01T12:00:00Z (or 2025-06-01) or epoch milliseconds such as 1748779200000 (got ${shown(v)})`,
      });
      return z.NEVER;
    }
    return ms;
  });

const DECIMAL_INT = /^-?\d{1,16}$/;
const DECIMAL = /^-?(?:\d{1,16}(?:\.\d{1,16})?|\.\d{1,16})$/;

export const numberParam = (
  description: string,
  what: string,
  opts: { int?: boolean; min?: number; max?: number; default?: number } = {},
) =>
  param(
    {
      description,
      type: opts.int ? "integer" : "number",
      ...(opts.min !== undefined ? { minimum: opts.min } : {}),
      ...(opts.max !== undefined ? { maximum: opts.max } : {}),
      ...(opts.default !== undefined ? { default: opts.default } : {}),
    },
    (v, ctx) => {
      const n = Number(v);
      // Plain decimal only: Number() would also read "0x10" as 16, "1e3" as 1000 and " 5 " as 5.
      const ok =
        (opts.int ? DECIMAL_INT : DECIMAL).test(v) &&
        Number.isFinite(n) &&
        (!opts.int || Number.isInteger(n)) &&
        (opts.min === undefined || n >= opts.min) &&
        (opts.max === undefined || n <= opts.max);
      if (!ok) {
        ctx.addIssue({ code: "custom", message: `must be ${what} (got ${shown(v)})` });
        return z.NEVER;
      }
      return n;
    },
  );

export const enumParam = <T extends string>(description: string, values: readonly T[], defaultValue?: T) =>
  param({ description, type: "string", enum: values, ...(defaultValue !== undefined ? { default: defaultValue } : {}) }, (v, ctx) => {
    if ((values as readonly string[]).includes(v)) return v as T;
    ctx.addIssue({ code: "custom", message: `must be one of ${values.join(", ")} (got ${shown(v)})` });
    return z.NEVER;
  });

export const stringParam = (description: string, max: number) =>
  param({ description, type: "string", maxLength: max }, (v, ctx) => {
    if (v.length <= max) return v;
    ctx.addIssue({ code: "custom", message: `must be at most ${max} characters` });
    return z.NEVER;
  });

/** A string parameter that may be repeated (`?swap=a&swap=b`): its values in order, at most `most` of them. */
export const repeatedStringParam = (description: string, maxLength: number, most: number) =>
  z
    .unknown()
    .transform((v, ctx): string[] | undefined => {
      if (v === undefined || v === "") return undefined;
      const values = Array.isArray(v) ? v : [v];
      if (values.length > most) {
        ctx.addIssue({ code: "custom", message: `may be given at most ${most} times (got ${values.length})` });
        return z.NEVER;
      }
      for (const value of values) {
        if (typeof value !== "string" || value.length > maxLength) {
          ctx.addIssue({ code: "custom", message: `each value must be a plain string of at most ${maxLength} characters` });
          return z.NEVER;
        }
      }
      return values as string[];
    })
    .optional()
    .meta({ description: `${description} (repeat it for several)`, type: "string", maxLength });

/** `since` and `until` of a window over `what` (e.g. "trace start"), both inclusive. */
export const windowParams = (what: string) => ({
  since: timeParam(`earliest ${what}, inclusive`),
  until: timeParam(`latest ${what}, inclusive`),
});

/** `limit` (1..max) and the opaque `cursor` of a paginated list. */
export const pageParams = (max: number, defaultLimit: number) => ({
  limit: numberParam(`items per page (default ${defaultLimit})`, `an integer from 1 to ${max}`, {
    int: true,
    min: 1,
    max,
    default: defaultLimit,
  }),
  cursor: stringParam("nextCursor of the previous page, passed back unchanged", 1_000),
});

const windowCheck = (q: Record<string, unknown>, ctx: z.RefinementCtx) => {
  const { since, until } = q as { since?: number; until?: number };
  if (since !== undefined && until !== undefined && since > until) {
    ctx.addIssue({ code: "custom", path: ["since"], message: "must not be after until" });
  }
};

type QueryShape = Record<string, ReturnType<typeof param>>;
type ParsedQuery<S extends QueryShape> = { [K in keyof S]: z.output<S[K]> };

/** The query parameters of one route: parse (400 naming each bad or unknown parameter) and the shape the OpenAPI document lists. */
export interface QueryDefinition<S extends QueryShape> {
  readonly shape: S;
  parse(query: unknown): ParsedQuery<S>;
}

/** A strict query: unknown parameters are refused by name; `since` after `until` is refused too. */
export function defineQuery<S extends QueryShape>(shape: S): QueryDefinition<S> {
  const schema = z.object(shape).strict().superRefine(windowCheck);
  const allowed = Object.keys(shape);
  return {
    shape,
    parse(query) {
      const result = schema.safeParse(query ?? {});
      if (!result.success) throw invalidQuery(result.error, allowed);
      return result.data as ParsedQuery<S>;
    },
  };
}

/** zod issues -> 400 invalid_query whose message names each bad parameter. */
function invalidQuery(error: z.ZodError, allowed: readonly string[]): HttpError {
  const problems: { parameter: string; message: string }[] = [];
  for (const issue of error.issues) {
    if (issue.code === "unrecognized_keys") {
      for (const key of issue.keys) {
        problems.push({ parameter: key, message: `unknown query parameter; allowed: ${allowed.join(", ")}` });
      }
    } else {
      problems.push({ parameter: issue.path.map(String).join(".") || "query", message: issue.message });
    }
  }
  return invalidParams(problems);
}

const invalidParams = (problems: { parameter: string; message: string }[]) =>
  new HttpError(
    400,
    "invalid_query",
    `Invalid query parameters: ${problems.map((p) => `${p.parameter}: ${p.message}`).join("; ")}`,
    problems,
  );

/** Run a store's list call; a cursor it refuses (InvalidCursorError of any store) is a 400 naming `cursor`. */
export async function withCursor<T>(list: () => Promise<T>): Promise<T> {
  try {
    return await list();
  } catch (err) {
    if (err instanceof Error && err.name === "InvalidCursorError") throw invalidParams([{ parameter: "cursor", message: err.message }]);
    throw err;
  }
}

/** The link to the next page: the same query with `cursor` replaced; null on the last page. */
export function nextPageLink(path: string, query: Record<string, unknown>, nextCursor: string | undefined): string | null {
  if (!nextCursor) return null;
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) if (k !== "cursor" && typeof v === "string") params.set(k, v);
  params.set("cursor", nextCursor);
  return `${path}?${params.toString()}`;
}

/** Drop the parameters that were not given, for store filters typed with optional fields. */
export const given = <T extends Record<string, unknown>>(q: T) =>
  Object.fromEntries(Object.entries(q).filter(([, v]) => v !== undefined)) as { [K in keyof T]?: Exclude<T[K], undefined> };
