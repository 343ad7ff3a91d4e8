/**
 * What tests and the in-process pipeline run the simulator from (`@tracelane/llm-simulator/testing`).
 * index.ts is the entrypoint and boots a service when imported, so it cannot be the package's face.
 */
export { startSimulator, createSimulatorApp, type RunningSimulator, type SimulatorConfig, type SimulatorStats } from "./app.js";
export { loadEnv, configFromEnv, type SimulatorEnv } from "./env.js";
