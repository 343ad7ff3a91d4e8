import { z } from "zod";
import { RESEARCH_PIPELINE, type Pipeline } from "@tracelane/pipeline";
import { ResearchIdSchema } from "@tracelane/queue-contract";
import { researchOptionsSchema } from "@tracelane/research-store";
import { HttpError } from "./http/errors.js";

/** One problem with the request, named by its field path ("query", "options.models.analysis", "body"). */
interface FieldProblem {
  path: string;
  message: string;
}

const describe = (value: unknown): string =>
  value === null
    ? "null"
    : value === undefined
      ? "nothing"
      : Array.isArray(value)
        ? "an array"
        : typeof value === "object"
          ? "an object"
          : `a ${typeof value}`;

/** Characters as a person counts them (code points, not UTF-16 units). */
const charCount = (s: string) => {
  let n = 0;
  for (const _ of s) n++;
  return n;
};

type AnyPipeline = Pipeline<string, string>;

/**
 * The body of `POST /v1/research`. Strict: unknown fields are rejected by name. `options.models`
 * takes one model per stage of `pipeline`.
 */
/** A letter, mark, number, punctuation or symbol: what a person can see (not \u0000, \u200b, spaces). */
const VISIBLE_CHAR = /[\p{L}\p{M}\p{N}\p{P}\p{S}]/u;
/** A high surrogate not followed by a low one, or a low one not preceded by a high one. */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

export function researchRequestSchema(maxQueryChars: number, pipeline: AnyPipeline = RESEARCH_PIPELINE) {
  return z
    .object(
      {
        query: z
          .string({
            error: (iss) =>
              iss.input === undefined
                ? "query is required: send the research question as a non-empty string"
                : `query must be a string (got ${describe(iss.input)})`,
          })
          .trim()
          .min(1, "query must not be empty or only whitespace")
          .superRefine((q, ctx) => {
            if (q === "") return; // min(1) said so already
            if (!VISIBLE_CHAR.test(q)) {
              ctx.addIssue({
                code: "custom",
                message: "query has no visible character (only control, format or separator characters): send the question as text",
              });
              return;
            }
            if (LONE_SURROGATE.test(q)) {
              ctx.addIssue({
                code: "custom",
                message: "query contains a lone UTF-16 surrogate (a broken character): send valid Unicode text",
              });
              return;
            }
            const n = charCount(q);
            if (n > maxQueryChars) {
              ctx.addIssue({
                code: "custom",
                message: `query is ${n} characters long; the limit is ${maxQueryChars}. Shorten it.`,
              });
            }
          })
          .meta({ description: "the research question; trimmed, 1 to MAX_QUERY_CHARS characters", maxLength: maxQueryChars }),
        options: researchOptionsSchema(pipeline).optional(),
      },
      { error: (iss) => `the body must be a JSON object like {"query": "..."} (got ${describe(iss.input)})` },
    )
    .strict();
}
export type ResearchRequest = z.infer<ReturnType<typeof researchRequestSchema>>;

/** Allowed fields per object path, to tell the caller what they may send instead of an unknown field. */
function allowedFields(pipeline: AnyPipeline): Record<string, readonly string[]> {
  return {
    "": ["query", "options"],
    options: Object.keys(researchOptionsSchema(pipeline).shape),
    "options.models": pipeline.names,
  };
}

const pathOf = (path: readonly PropertyKey[]) => (path.length === 0 ? "body" : path.map(String).join("."));

/** Turn zod issues into field problems; each unknown field becomes its own problem naming it (and what is allowed there). */
function fieldProblems(
  error: z.ZodError,
  pipeline: AnyPipeline = RESEARCH_PIPELINE,
  allowedHere: Record<string, readonly string[]> = allowedFields(pipeline),
): FieldProblem[] {
  const problems: FieldProblem[] = [];
  for (const issue of error.issues) {
    if (issue.code === "unrecognized_keys") {
      const parent = issue.path.map(String).join(".");
      const allowed = allowedHere[parent];
      for (const key of issue.keys) {
        problems.push({
          path: pathOf([...issue.path, key]),
          message: `unknown field "${key}"${allowed ? `; allowed fields here: ${allowed.join(", ")}` : ""}`,
        });
      }
    } else {
      problems.push({ path: pathOf(issue.path), message: issue.message });
    }
  }
  return problems;
}

function invalidRequest(what: string, problems: FieldProblem[]): HttpError {
  const summary = problems.map((p) => `${p.path}: ${p.message}`).join("; ");
  return new HttpError(400, "invalid_request", `${what} is invalid: ${summary}`, problems);
}

// zod compiles a schema on first use; build one per (pipeline, limit), not one per request.
const schemas = new WeakMap<AnyPipeline, Map<number, ReturnType<typeof researchRequestSchema>>>();

export function parseResearchRequest(body: unknown, maxQueryChars: number, pipeline: AnyPipeline = RESEARCH_PIPELINE): ResearchRequest {
  let byLimit = schemas.get(pipeline);
  if (!byLimit) schemas.set(pipeline, (byLimit = new Map()));
  let schema = byLimit.get(maxQueryChars);
  if (!schema) byLimit.set(maxQueryChars, (schema = researchRequestSchema(maxQueryChars, pipeline)));
  const result = schema.safeParse(body);
  if (!result.success) throw invalidRequest("The request body", fieldProblems(result.error, pipeline));
  return result.data;
}

/** A JSON body parsed with `schema` (strict objects): a 400 invalid_request naming every field at fault. */
export function parseBody<T extends z.ZodType>(schema: T, body: unknown, allowed: Record<string, readonly string[]>): z.output<T> {
  const result = schema.safeParse(body);
  if (!result.success) throw invalidRequest("The request body", fieldProblems(result.error, RESEARCH_PIPELINE, allowed));
  return result.data;
}

/** `Idempotency-Key`: 1-200 printable ASCII characters. */
export const IdempotencyKeySchema = z
  .string()
  .min(1, "Idempotency-Key must not be empty")
  .max(200, "Idempotency-Key must be at most 200 characters")
  .regex(/^[\x20-\x7E]+$/, "Idempotency-Key may only contain printable ASCII characters");

/**
 * The key from the header's values as received (`req.headersDistinct`): Node joins repeated headers
 * with ", ", so two keys would otherwise silently become a third.
 */
export function parseIdempotencyKey(values: readonly string[] | undefined): string | undefined {
  if (values === undefined || values.length === 0) return undefined;
  if (values.length > 1) {
    throw invalidRequest("The Idempotency-Key header", [
      {
        path: "headers.idempotency-key",
        message: `Idempotency-Key must be sent once (got ${values.length} headers); send one key per request`,
      },
    ]);
  }
  const result = IdempotencyKeySchema.safeParse(values[0]);
  if (!result.success) {
    throw invalidRequest(
      "The Idempotency-Key header",
      result.error.issues.map((i) => ({ path: "headers.idempotency-key", message: i.message })),
    );
  }
  return result.data;
}

export function parseResearchId(id: string): string {
  const result = ResearchIdSchema.safeParse(id);
  if (!result.success) {
    throw invalidRequest("The research id", [
      { path: "params.id", message: `"${id.slice(0, 80)}" is not a research id: ${result.error.issues[0]?.message ?? "bad format"}` },
    ]);
  }
  return result.data;
}

/** SSE `Last-Event-ID`: a Redis stream id such as `1712345678901-0`. */
export const LastEventIdSchema = z.string().regex(/^\d{1,20}-\d{1,20}$/);

export function parseLastEventId(header: string | undefined): string {
  if (header === undefined || header === "") return "0";
  if (!LastEventIdSchema.safeParse(header).success) {
    throw invalidRequest("The Last-Event-ID header", [
      {
        path: "headers.last-event-id",
        message: `must be an event id sent by this stream, such as 1712345678901-0 (got "${header.slice(0, 80)}")`,
      },
    ]);
  }
  return header;
}
