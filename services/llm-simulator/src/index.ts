import { tracing } from "./instrumentation.js";
import { runService } from "@tracelane/runtime";
import { createLogger } from "@tracelane/tracing";
import { startSimulator } from "./app.js";
import { configFromEnv, loadEnv } from "./env.js";

await runService({
  name: "llm-simulator",
  loadEnv,
  createLogger,
  tracing,
  async start({ env, logger, shutdown }) {
    const simulator = await startSimulator(configFromEnv(env), { port: env.PORT, host: env.HOST });
    // In-flight completions get a moment to finish; hung requests are cut when it is over.
    shutdown.add("http server", () => simulator.close({ graceMs: 2_000 }));
    logger.info({ port: simulator.port, host: env.HOST }, "llm-simulator listening");
  },
});
