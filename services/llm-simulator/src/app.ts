import { createServer, type Server } from "node:http";
import { listen } from "@tracelane/runtime";
import express, { type ErrorRequestHandler, type Express } from "express";
import { authenticate } from "./auth.js";
import { chatCompletionsHandler } from "./chat.js";
import { searchHandler } from "./evidence.js";
import {
  bodyTooLarge,
  invalidJsonBody,
  invalidRequest,
  modelNotFound,
  notFound,
  sendError,
  serverError,
  SimulatorHttpError,
} from "./errors.js";
import { KNOWN_MODELS } from "./models.js";
import { ConfigPatchSchema, DEFAULT_SIMULATOR_CONFIG, SimulatorState, type SimulatorConfig } from "./state.js";

export { type SimulatorConfig, type SimulatorStats } from "./state.js";

/** A fixed `created` for /v1/models entries. */
const MODELS_CREATED = 1_735_689_600;

/**
 * The OpenAI-compatible simulator as an express app. `config` overrides the
 * defaults field by field; the live state sits in `app.locals.simulator`.
 */
export function createSimulatorApp(config: Partial<SimulatorConfig> = {}): Express {
  const state = new SimulatorState({ ...DEFAULT_SIMULATOR_CONFIG, ...config });
  const app = express();
  app.disable("x-powered-by");
  app.set("etag", false);
  app.locals.simulator = state;
  app.use(express.json({ limit: "50mb" }));

  app.get("/healthz", (_req, res) => {
    res.json({ status: "ok" });
  });

  app.get("/v1/models", (req, res) => {
    authenticate(req, state.config.apiKey);
    res.json({
      object: "list",
      data: KNOWN_MODELS.map((m) => ({ id: m.id, object: "model", created: MODELS_CREATED, owned_by: m.ownedBy })),
    });
  });

  app.get("/v1/models/:model", (req, res) => {
    authenticate(req, state.config.apiKey);
    const model = KNOWN_MODELS.find((m) => m.id === req.params.model);
    if (!model) throw modelNotFound(req.params.model);
    res.json({ id: model.id, object: "model", created: MODELS_CREATED, owned_by: model.ownedBy });
  });

  app.post("/v1/chat/completions", chatCompletionsHandler(state));
  // The evidence search tool's backend (Tavily's request and response shape; see evidence.ts).
  app.post(
    "/search",
    (req, _res, next) => {
      authenticate(req, state.config.apiKey);
      next();
    },
    searchHandler(),
  );

  app.get("/_sim/stats", (_req, res) => {
    res.json(state.snapshot());
  });

  app.get("/_sim/config", (_req, res) => {
    res.json(state.publicConfig());
  });

  app.post("/_sim/config", (req, res) => {
    const parsed = ConfigPatchSchema.safeParse(req.body ?? {});
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      throw invalidRequest(`Invalid simulator config at '${issue.path.join(".")}': ${issue.message}`, issue.path.join(".") || null);
    }
    state.applyPatch(parsed.data);
    res.json(state.publicConfig());
  });

  app.post("/_sim/reset", (_req, res) => {
    state.reset();
    res.json(state.snapshot());
  });

  app.use((req, _res, next) => {
    next(notFound(req.method, req.path));
  });

  const onError: ErrorRequestHandler = (err: unknown, _req, res, next) => {
    if (res.headersSent) return next(err);
    if (err instanceof SimulatorHttpError) return sendError(res, err);
    const type = (err as { type?: unknown } | null)?.type;
    if (type === "entity.parse.failed") return sendError(res, invalidJsonBody());
    if (type === "entity.too.large") return sendError(res, bodyTooLarge());
    console.error(JSON.stringify({ level: "error", msg: "llm-simulator request failed", err: String(err) }));
    sendError(res, serverError());
  };
  app.use(onError);
  return app;
}

export interface RunningSimulator {
  server: Server;
  port: number;
  /** `http://host:port/v1`, ready for `new OpenAI({ baseURL })`. */
  baseURL: string;
  /** Stop accepting connections; open ones (hung requests too) are cut after `graceMs`. */
  close(opts?: { graceMs?: number }): Promise<void>;
}

/** Start the simulator in-process (port 0 picks a free port). */
export async function startSimulator(
  config: Partial<SimulatorConfig> = {},
  opts: { port?: number; host?: string } = {},
): Promise<RunningSimulator> {
  const app = createSimulatorApp(config);
  const host = opts.host ?? "127.0.0.1";
  const server = createServer(app);
  // A port in use fails naming PORT, as in every service.
  const port = await listen(server, { port: opts.port ?? 0, host, variable: "PORT" });
  const urlHost = host === "0.0.0.0" || host === "::" ? "127.0.0.1" : host.includes(":") ? `[${host}]` : host;
  let closing: Promise<void> | undefined;
  return {
    server,
    port,
    baseURL: `http://${urlHost}:${port}/v1`,
    close({ graceMs = 0 } = {}) {
      closing ??= new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        server.closeIdleConnections();
        const force = setTimeout(() => server.closeAllConnections(), graceMs);
        force.unref();
        server.once("close", () => clearTimeout(force));
      });
      return closing;
    },
  };
}
