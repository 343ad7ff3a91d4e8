import { z } from "zod";
import { PriceFileSchema } from "@tracelane/pricing";
import { parseTime } from "../http/query.js";
import { apiSchemas } from "./registry.js";

/** A time in a JSON body: ISO 8601 (a date is its UTC midnight; a time needs Z or an offset) or epoch milliseconds. */
const bodyTime = (description: string) =>
  z
    .union([z.string(), z.number()])
    .transform((v, ctx) => {
      const ms = typeof v === "number" ? (Number.isInteger(v) && v >= 0 ? parseTime(String(v)) : undefined) : parseTime(v);
      if (ms === undefined) {
        ctx.addIssue({
          code: "custom",
          message: `must be an ISO 8601 time such as 2025-06-01T12:00:00Z (or 2025-06-01) or epoch milliseconds such as 1748779200000 (got ${JSON.stringify(v).slice(0, 60)})`,
        });
        return z.NEVER;
      }
      return ms;
    })
    .meta({ description: `${description}: ISO 8601 (2025-06-01, 2025-06-01T12:00:00Z) or epoch milliseconds` });

/** POST /v1/admin/reprice. No bound on the window: the work goes in steps of traces, over stored traces only (their TTL). */
export const RepriceRequestSchema = z
  .object({
    since: bodyTime("earliest trace start re-priced, inclusive"),
    until: bodyTime("latest trace start re-priced, inclusive (default: now)").optional(),
    priceTable: PriceFileSchema.optional().meta({
      description:
        "a price table to price with, in the TRACELANE_PRICE_TABLE file's shape ({ models: [...] }, USD per 1M tokens); default: the trace-collector's own",
    }),
  })
  .strict()
  .superRefine((r, ctx) => {
    if (r.until !== undefined && r.until < r.since) {
      ctx.addIssue({ code: "custom", path: ["until"], message: "must not be before since" });
    }
  });

const RepriceLinksSchema = z.object({ self: z.string() });

export const RepriceAcceptedSchema = z.object({
  id: z.string().meta({ description: "reprice id: GET /v1/admin/reprice/{id} follows it" }),
  state: z.literal("queued"),
  since: z.string(),
  until: z.string(),
  links: RepriceLinksSchema,
});
apiSchemas.add(RepriceAcceptedSchema, { id: "RepriceAccepted" });

export const RepriceStatusSchema = z.object({
  id: z.string(),
  state: z.enum(["queued", "running", "completed", "failed"]),
  since: z.string(),
  until: z.string(),
  sinceMs: z.number().int(),
  untilMs: z.number().int(),
  inlinePriceTable: z.boolean().meta({ description: "the request carried its own price table (else: the collector's)" }),
  tracesDone: z.number().int().meta({ description: "traces of the window re-priced so far" }),
  tracesTotal: z.number().int().meta({ description: "traces whose start was in the window when the reprice started" }),
  tracesChanged: z.number().int().meta({ description: "of tracesDone, those whose stored summary changed" }),
  tracesSkipped: z.number().int().meta({ description: "traces left as they were: expired, or receiving spans through every try" }),
  callsRepriced: z.number().int().meta({ description: "model calls whose cost changed" }),
  nowPriced: z.number().int().meta({ description: "calls that were unpriced and now have a cost" }),
  nowUnpriced: z.number().int().meta({ description: "calls that had a cost and have none now (model not in the table)" }),
  researchesRepriced: z.number().int().meta({ description: "finished researches whose costs changed" }),
  costBeforeUsd: z.number().meta({ description: "the re-priced traces' total cost before, USD" }),
  costAfterUsd: z.number().meta({ description: "and after" }),
  priceVersion: z
    .string()
    .nullable()
    .meta({ description: "the version of the table used (PriceTable.version, a content hash; null until the collector started the job)" }),
  attempts: z.number().int().meta({
    description:
      "attempts started: more than 1 when the collector died or the job stalled (each resumed where the last one reported, the figures add up)",
  }),
  error: z.string().optional().meta({ description: "why it failed" }),
  links: RepriceLinksSchema,
});
apiSchemas.add(RepriceStatusSchema, { id: "RepriceStatus" });
