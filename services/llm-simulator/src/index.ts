import { tracing } from "./instrumentation.js";
import { Shutdown } from "@tracelane/runtime";
import { createLogger } from "@tracelane/tracing";
import { startSimulator } from "./app.js";
import { configFromEnv, loadEnv } from "./env.js";

const log = createLogger("llm-simulator");

async function main(): Promise<void> {
  const env = loadEnv();
  const simulator = await startSimulator(configFromEnv(env), { port: env.PORT, host: env.HOST });
  const shutdown = new Shutdown(log);
  // In-flight completions get a moment to finish; hung requests are cut when it is over.
  shutdown.add("http server", () => simulator.close({ graceMs: 2_000 }));
  shutdown.add("flush spans", () => tracing.shutdown());
  shutdown.installSignalHandlers({ graceMs: 10_000 });
  log.info({ port: simulator.port, host: env.HOST }, "llm-simulator listening");
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : String(err));
  process.exit(1);
});
