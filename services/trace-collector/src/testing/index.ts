/** Test helpers (`@tracelane/trace-collector/testing`): synthetic traces and the service's env loader. */
export * from "./synthetic.js";
export { loadEnv } from "../env.js";
