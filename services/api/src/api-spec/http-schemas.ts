import { z } from "zod";
import { apiSchemas } from "./registry.js";

/** Every error answer: `code` is stable, `message` says what to fix, `details` names the fields (or null). */
export const ErrorSchema = z.object({
  error: z.object({
    code: z.string().meta({ description: "stable and machine-readable: invalid_request, invalid_query, not_found, ..." }),
    message: z.string().meta({ description: "what went wrong and what to fix" }),
    details: z.unknown().meta({ description: "the fields or parameters at fault ([{ path|parameter, message }]), an object, or null" }),
  }),
});
apiSchemas.add(ErrorSchema, { id: "Error" });

export const HealthSchema = z.object({ status: z.literal("ok") });
apiSchemas.add(HealthSchema, { id: "Health" });

export const ReadySchema = z.object({ status: z.literal("ready"), checks: z.object({ redis: z.literal("ok") }) });
apiSchemas.add(ReadySchema, { id: "Ready" });

export const NotReadySchema = z.object({
  status: z.literal("unavailable"),
  reason: z.string(),
  checks: z.object({ redis: z.literal("unavailable") }),
});
apiSchemas.add(NotReadySchema, { id: "NotReady" });
