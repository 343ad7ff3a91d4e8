import { tracing } from "./instrumentation.js";
import { serveStageWorker } from "@tracelane/stage-runner";
import { analysisStage } from "./stage.js";

await serveStageWorker(analysisStage, { tracing });
