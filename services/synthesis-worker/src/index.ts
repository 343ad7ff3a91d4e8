import { tracing } from "./instrumentation.js";
import { serveStageWorker } from "@tracelane/stage-runner";
import { synthesisStage } from "./stage.js";

await serveStageWorker(synthesisStage, { tracing });
