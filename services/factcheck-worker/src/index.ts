import { tracing } from "./instrumentation.js";
import { runStageWorker } from "@tracelane/stage-runner";
import { factcheckStage } from "./stage.js";

await runStageWorker(factcheckStage, { tracing, installSignalHandlers: true });
