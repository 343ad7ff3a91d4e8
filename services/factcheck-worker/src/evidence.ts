import { z } from "zod";
import { envInt, envOptionalString, parseEnv } from "@tracelane/runtime";
import type { ClaimTool, ToolContext } from "@tracelane/stage-runner";
import { createTracedFetch } from "@tracelane/tracing";

const EvidenceEnvSchema = z.object({
  /**
   * A search API in Tavily's shape (`POST { query, max_results }` -> `{ results: [{ title, url, content, score }] }`).
   * Default: the `/search` of the model endpoint's host, which the simulator serves (sent the model endpoint's key).
   */
  EVIDENCE_SEARCH_URL: envOptionalString().pipe(z.string().url("must be a URL such as https://api.tavily.com/search").optional()),
  /** Sent as `Authorization: Bearer <key>` to EVIDENCE_SEARCH_URL when set. */
  EVIDENCE_SEARCH_API_KEY: envOptionalString(),
  EVIDENCE_MAX_RESULTS: envInt(3, { min: 1, max: 10 }),
  EVIDENCE_TIMEOUT_MS: envInt(10_000, { min: 100 }),
});

const SearchArgsSchema = z.object({ query: z.string().trim().min(1).max(400) });

const SearchResponseSchema = z.object({
  results: z.array(z.looseObject({ title: z.string(), url: z.string(), content: z.string(), score: z.number().optional() })),
});

/** Longest result text sent back to the model per source: results are evidence, not documents. */
const MAX_CONTENT_CHARS = 600;

/**
 * The fact-checker's `search_evidence` tool: a POST to the search API per call. A failed search is told to the
 * model as the tool's result (it may search again or answer unverifiable), not thrown: one bad search should
 * not cost the claim's earlier paid turns.
 */
export function evidenceTools(env: Record<string, string | undefined>, ctx: ToolContext): ClaimTool[] {
  const config = parseEnv(EvidenceEnvSchema, env);
  const url = config.EVIDENCE_SEARCH_URL ?? new URL("/search", ctx.llmBaseURL).toString();
  // The model endpoint's key goes only to the model endpoint's host; a search API of its own gets its own key.
  const key = config.EVIDENCE_SEARCH_URL ? config.EVIDENCE_SEARCH_API_KEY : ctx.llmApiKey;
  const failure = (type: string, message: string) => ({ failed: { type, message }, result: JSON.stringify({ error: message }) });
  const send = createTracedFetch(ctx.fetch ?? fetch);
  return [
    {
      definition: {
        name: "search_evidence",
        description: "Search for sources that support or refute a statement. Returns titles, URLs and excerpts.",
        parameters: {
          type: "object",
          properties: { query: { type: "string", description: "What to search for: the statement's key terms." } },
          required: ["query"],
          additionalProperties: false,
        },
      },
      async run(args) {
        const parsed = SearchArgsSchema.safeParse(args);
        if (!parsed.success) return failure("invalid_tool_arguments", "search_evidence needs { query: string } (1-400 characters)");
        try {
          const res = await send(url, {
            method: "POST",
            headers: {
              "content-type": "application/json",
              ...(key ? { authorization: `Bearer ${key}` } : {}),
            },
            body: JSON.stringify({ query: parsed.data.query, max_results: config.EVIDENCE_MAX_RESULTS }),
            signal: AbortSignal.timeout(config.EVIDENCE_TIMEOUT_MS),
          });
          if (!res.ok) return failure(`http_${res.status}`, `search failed: HTTP ${res.status} from ${new URL(url).host}`);
          const body = SearchResponseSchema.safeParse(await res.json().catch(() => undefined));
          if (!body.success) return failure("invalid_response", `search at ${new URL(url).host} answered in an unexpected shape`);
          return JSON.stringify(
            body.data.results.map((r) => ({ title: r.title, url: r.url, content: r.content.slice(0, MAX_CONTENT_CHARS) })),
          );
        } catch (err) {
          return failure(
            err instanceof Error && err.name === "TimeoutError" ? "timeout" : "search_failed",
            `search failed: ${err instanceof Error ? err.message : String(err)}`,
          );
        }
      },
    },
  ];
}
