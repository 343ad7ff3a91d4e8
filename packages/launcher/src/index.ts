export { SERVICES, serviceSpec, resolveServiceName, type ServiceSpec, type ServiceName } from "./catalog.js";
export { spawnService, reapOnExit, REPO_ROOT, type ServiceProcess } from "./processes.js";
export { startStack, type Stack, type StackOptions } from "./stack.js";
export { freePort } from "./ports.js";
export { isolatedRun, ONE_OF_EACH } from "./isolated-run.js";
