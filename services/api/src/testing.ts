/**
 * What tests and the in-process pipeline build the api from (`@tracelane/api/testing`). index.ts is
 * the entrypoint and boots a service when imported, so it cannot be the package's face.
 */
export { composeApi, type Api, type ComposeApiOptions } from "./api.js";
export { loadEnv, appConfig, type Env } from "./env.js";
export { apiKeysFromEnv, checkBinding } from "./auth/binding.js";
export { HttpError } from "./http/errors.js";
export { createTracesRouter, type TracesRouterDeps } from "./routes/traces.js";
