import { tracing } from "./instrumentation.js";
import { serveStageWorker } from "@tracelane/stage-runner";
import { factcheckStage } from "./stage.js";

await serveStageWorker(factcheckStage, { tracing });
