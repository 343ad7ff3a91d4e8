export { ApiKeyConfigError, ApiKeys, keyIdOf, MIN_KEY_CHARS, ROLES, type Authentication, type Caller, type Role } from "./keys.js";
