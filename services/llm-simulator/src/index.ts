import "./instrumentation.js";
import { Shutdown, type ShutdownLogger } from "@tracelane/runtime";
import { startSimulator } from "./app.js";
import { configFromEnv, loadEnv } from "./env.js";

// One JSON line per event until the pino logger from @tracelane/tracing takes over.
const log: ShutdownLogger = {
  info: (obj, msg) => console.log(JSON.stringify({ level: "info", msg, ...obj })),
  error: (obj, msg) => console.error(JSON.stringify({ level: "error", msg, ...obj, ...errorFields(obj) })),
};

function errorFields(obj: object): object {
  const err = (obj as { err?: unknown }).err;
  return err instanceof Error ? { err: { name: err.name, message: err.message } } : {};
}

async function main(): Promise<void> {
  const env = loadEnv();
  const simulator = await startSimulator(configFromEnv(env), { port: env.PORT, host: env.HOST });
  const shutdown = new Shutdown(log);
  // In-flight completions get a moment to finish; hung requests are cut when it is over.
  shutdown.add("http server", () => simulator.close({ graceMs: 2_000 }));
  shutdown.installSignalHandlers({ graceMs: 10_000 });
  log.info({ port: simulator.port, host: env.HOST }, "llm-simulator listening");
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : String(err));
  process.exit(1);
});
