export {
  SERVICES,
  STOP_ORDER,
  WORKER_SERVICES,
  serviceCatalog,
  stopOrder,
  serviceSpec,
  resolveServiceName,
  type ServiceSpec,
  type ServiceName,
  type CoreService,
} from "./catalog.js";
export { spawnService, reapOnExit, REPO_ROOT, type ServiceProcess } from "./processes.js";
export { startStack, type Stack, type StackOptions } from "./stack.js";
export { freePort } from "./ports.js";
export { isolatedRun, ONE_OF_EACH } from "./isolated-run.js";
