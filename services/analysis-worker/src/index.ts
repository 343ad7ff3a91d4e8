import { tracing } from "./instrumentation.js";
import { runStageWorker } from "@tracelane/stage-runner";
import { analysisStage } from "./stage.js";

await runStageWorker(analysisStage, { tracing, installSignalHandlers: true });
