import { tracing } from "./instrumentation.js";
import { runStageWorker } from "@tracelane/stage-runner";
import { synthesisStage } from "./stage.js";

await runStageWorker(synthesisStage, { tracing, installSignalHandlers: true });
