import { z } from "zod";
import { networkCause, parseBody, type ApiClient } from "./client.js";
import { EXIT } from "./errors.js";
import { duration, usd } from "./format.js";
import { renderResearch } from "./render.js";
import {
  FINAL_STATUSES,
  ResearchEventSchema,
  ResearchViewSchema,
  SubmittedSchema,
  type Estimate,
  type ResearchEvent,
  type ResearchView,
} from "./schemas.js";
import { serverSentEvents } from "./sse.js";

const POLL_MS = 500;
/** The api sends a heartbeat every SSE_HEARTBEAT_MS (15 s by default): a stream quiet for longer is stuck (a buffering proxy). */
const STREAM_IDLE_MS = 45_000;

export interface ResearchRequest {
  query: string;
  wait: boolean;
  poll: boolean;
  json: boolean;
  maxCostUsd?: number;
  allowOverBudgetEstimate?: boolean;
  models: Record<string, string>;
  idempotencyKey?: string;
}

export interface Output {
  out(text: string): void;
  err(text: string): void;
}

const isFinal = (status: string) => (FINAL_STATUSES as readonly string[]).includes(status);
const exitFor = (view: ResearchView) => (view.status === "completed" ? EXIT.ok : isFinal(view.status) ? EXIT.failed : EXIT.ok);

/** `tracelane status <id>`. */
export async function showStatus(api: ApiClient, id: string, json: boolean, io: Output): Promise<number> {
  const { raw, data } = await api.getJson(`v1/research/${encodeURIComponent(id)}`, ResearchViewSchema);
  io.out(json ? raw.text : renderResearch(api, data));
  return exitFor(data);
}

/** `tracelane research "<query>" [--wait]`. */
export async function submitResearch(api: ApiClient, req: ResearchRequest, io: Output): Promise<number> {
  const options = {
    ...(Object.keys(req.models).length > 0 ? { models: req.models } : {}),
    ...(req.maxCostUsd !== undefined ? { maxCostUsd: req.maxCostUsd } : {}),
    ...(req.allowOverBudgetEstimate ? { allowOverBudgetEstimate: true } : {}),
  };
  const raw = await api.request("v1/research", {
    method: "POST",
    body: { query: req.query, ...(Object.keys(options).length > 0 ? { options } : {}) },
    ...(req.idempotencyKey !== undefined ? { headers: { "idempotency-key": req.idempotencyKey } } : {}),
  });
  const submitted = parseBody(SubmittedSchema, raw, "POST /v1/research");
  if (!req.wait) {
    io.out(
      req.json
        ? raw.text
        : [
            `research ${submitted.id}: ${submitted.status}${raw.status === 200 ? " (an earlier request with this Idempotency-Key)" : ""}`,
            ...(submitted.estimate ? [renderEstimate(submitted.estimate)] : []),
            `follow:  tracelane status ${submitted.id}`,
            ...(submitted.traceId ? [`trace:   tracelane trace ${submitted.traceId}`] : []),
          ].join("\n"),
    );
    return EXIT.ok;
  }

  if (!req.json) {
    io.out(`research ${submitted.id} submitted${submitted.traceId ? ` (trace ${submitted.traceId})` : ""}`);
    if (submitted.estimate) io.out(renderEstimate(submitted.estimate));
  }
  const stopWaiting = () => {
    io.err(`\nstopped waiting; research ${submitted.id} carries on: tracelane status ${submitted.id}`);
    process.exit(EXIT.interrupted);
  };
  process.once("SIGINT", stopWaiting);
  try {
    const progress = new Progress(req.json ? () => undefined : io.out);
    await follow(api, submitted.id, req.poll, progress, io);
    const { raw: final, data: view } = await api.getJson(`v1/research/${submitted.id}`, ResearchViewSchema);
    io.out(req.json ? final.text : `\n${renderResearch(api, view)}`);
    return exitFor(view);
  } finally {
    process.off("SIGINT", stopWaiting);
  }
}

/** `estimate: $0.007647 (p50), p95 $0.007917, from at least 50 recent researches per stage`, or why there is none. */
export function renderEstimate(e: Estimate): string {
  const samples = Object.values(e.basis.stages).map((s) => s.samples);
  if (!e.available || e.p50 === undefined || e.p95 === undefined) return `estimate: none yet (${e.reason ?? "too little history"})`;
  return `estimate: ${usd(e.p50)} (p50), p95 ${usd(e.p95)}, from at least ${samples.length > 0 ? Math.min(...samples) : 0} recent researches per stage`;
}

/** Follow the research until it is final: the event stream, else (or when it breaks off) polling. */
async function follow(api: ApiClient, id: string, poll: boolean, progress: Progress, io: Output): Promise<void> {
  if (!poll) {
    const why = await followEvents(api, id, progress);
    if (why === undefined) return;
    io.err(`(event stream ${why}; polling GET /v1/research/${id} instead)`);
  }
  while (true) {
    const { data: view } = await api.getJson(`v1/research/${id}`, ResearchViewSchema);
    progress.fromView(view);
    if (isFinal(view.status)) return;
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}

/** Print each event until the final one; undefined when it came, else why the stream could not be followed. */
async function followEvents(api: ApiClient, id: string, progress: Progress): Promise<string | undefined> {
  const controller = new AbortController();
  try {
    let res: Response;
    try {
      res = await fetch(api.url(`v1/research/${id}/events`), {
        headers: { accept: "text/event-stream", ...api.authHeaders() },
        signal: controller.signal,
      });
    } catch (err) {
      return `unavailable: ${networkCause(err)}`;
    }
    if (!res.ok || !res.body || !(res.headers.get("content-type") ?? "").includes("text/event-stream")) {
      await res.body?.cancel().catch(() => undefined);
      return `unavailable (HTTP ${res.status}, ${res.headers.get("content-type")?.split(";")[0] || "no content type"})`;
    }
    let quiet = false;
    const idle = setTimeout(() => {
      quiet = true;
      controller.abort();
    }, STREAM_IDLE_MS);
    async function* watched(body: AsyncIterable<Uint8Array>) {
      for await (const chunk of body) {
        idle.refresh();
        yield chunk;
      }
    }
    try {
      for await (const sse of serverSentEvents(watched(res.body as unknown as AsyncIterable<Uint8Array>))) {
        let json: unknown;
        try {
          json = JSON.parse(sse.data);
        } catch {
          continue;
        }
        const event = ResearchEventSchema.safeParse(json);
        if (!event.success) continue;
        progress.fromEvent(event.data);
        if (isFinal(event.data.status) && event.data.type.startsWith("research.")) return undefined;
      }
    } catch {
      return quiet ? `went quiet for ${STREAM_IDLE_MS / 1000} s` : "broke off";
    } finally {
      clearTimeout(idle);
    }
    return "ended before the research finished";
  } finally {
    controller.abort();
  }
}

/** One line per stage transition, each printed once whether it came from an event or a poll. */
class Progress {
  private readonly printed = new Set<string>();
  private readonly t0 = Date.now();

  constructor(private readonly out: (line: string) => void) {}

  private line(key: string, text: string): void {
    if (this.printed.has(key)) return;
    this.printed.add(key);
    this.out(`  +${((Date.now() - this.t0) / 1000).toFixed(2)}s  ${text}`);
  }

  fromEvent(e: ResearchEvent): void {
    const d = e.data ?? {};
    const stage = e.stage ?? "";
    const attempt = typeof d.attempt === "number" ? d.attempt : 1;
    switch (e.type) {
      case "stage.started":
        return this.stageStarted(stage, typeof d.model === "string" ? d.model : undefined, attempt);
      case "stage.completed":
        return this.completed(stage, CallFactsSchema.safeParse(d).data ?? {});
      case "stage.retrying":
        return this.retrying(stage, attempt, errorText(d.error));
      case "research.completed":
      case "research.failed":
      case "research.cancelled":
        return this.final(e.type.slice("research.".length), errorPlace(d.error));
    }
  }

  fromView(view: ResearchView): void {
    for (const [stage, s] of Object.entries(view.stages)) {
      if (s.status === "running") this.stageStarted(stage, s.model, s.attempts);
      else if (s.status === "completed") this.completed(stage, s);
      else if (s.status === "queued" && s.error && s.attempts > 0) this.retrying(stage, s.attempts, `${s.error.type}: ${s.error.message}`);
    }
    if (isFinal(view.status)) {
      this.final(view.status, errorPlace(view.error));
    }
  }

  private stageStarted(stage: string, model: string | undefined, attempt: number): void {
    this.line(`started:${stage}:${attempt}`, `${stage.padEnd(10)} started${model ? ` on ${model}` : ""} (attempt ${attempt})`);
  }

  private completed(stage: string, call: CallFacts): void {
    const tokens = call.usage ? ` · ${call.usage.inputTokens} in / ${call.usage.outputTokens} out tokens` : "";
    const cost = call.costUsd !== undefined ? ` · ${usd(call.costUsd)}` : "";
    this.line(
      `completed:${stage}`,
      `${stage.padEnd(10)} completed in ${duration(call.latencyMs)}${call.model ? ` on ${call.model}` : ""}${tokens}${cost}`,
    );
  }

  private retrying(stage: string, attempt: number, error: string | undefined): void {
    this.line(`retrying:${stage}:${attempt}`, `${stage.padEnd(10)} attempt ${attempt} failed${error ? ` (${error})` : ""}; retrying`);
  }

  /** The error itself is in the summary printed next. */
  private final(status: string, place: string): void {
    this.line("final", `research ${status}${place}`);
  }
}

/** What a stage.completed event says about the call. */
const CallFactsSchema = z.object({
  model: z.string().optional(),
  latencyMs: z.number().optional(),
  usage: z.object({ inputTokens: z.number(), outputTokens: z.number() }).optional(),
  costUsd: z.number().nullable().optional(),
});
type CallFacts = z.infer<typeof CallFactsSchema>;

/** `type: message` of a stage error. */
function errorText(error: unknown): string | undefined {
  if (!error || typeof error !== "object") return undefined;
  const e = error as { type?: unknown; message?: unknown };
  return `${typeof e.type === "string" ? `${e.type}: ` : ""}${typeof e.message === "string" ? e.message : ""}`;
}

/** ` at analysis (provider_auth)` for a research error, "" when there is none. */
function errorPlace(error: unknown): string {
  if (!error || typeof error !== "object") return "";
  const e = error as { stage?: unknown; type?: unknown };
  return `${typeof e.stage === "string" && e.stage ? ` at ${e.stage}` : ""}${typeof e.type === "string" ? ` (${e.type})` : ""}`;
}
