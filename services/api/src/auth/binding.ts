import { isIP } from "node:net";
import { ApiKeyConfigError, ApiKeys } from "@tracelane/api-keys";
import { EnvError } from "@tracelane/runtime";

/** Where the api listens when HOST is not set: loopback, so an api without keys is not on the network by accident. */
export const DEFAULT_HOST = "127.0.0.1";

/** 127.0.0.0/8, ::1 and localhost reach only this machine; anything else (0.0.0.0, ::, an interface address) may not. */
function isLoopback(host: string): boolean {
  const h = host
    .trim()
    .toLowerCase()
    .replace(/^\[|\]$/g, "");
  if (h === "localhost" || h === "::1") return true;
  if (isIP(h) === 4) return h.startsWith("127.");
  return h.startsWith("::ffff:127.");
}

/** API_KEYS / API_KEYS_FILE parsed; a bad entry or an unreadable file is an EnvError naming the variable (never the key). */
export function apiKeysFromEnv(env: { API_KEYS?: string | undefined; API_KEYS_FILE?: string | undefined }): ApiKeys {
  try {
    return ApiKeys.fromEnv(env);
  } catch (err) {
    if (err instanceof ApiKeyConfigError) throw new EnvError([err.message]);
    throw err;
  }
}

/**
 * Without API keys the api may listen only on loopback, unless ALLOW_UNAUTHENTICATED=true says that
 * running open on `host` is meant. Throws an EnvError naming the variables and both ways out.
 */
export function checkBinding(opts: { host: string; keys: ApiKeys; allowUnauthenticated: boolean }): void {
  if (opts.keys.enabled || opts.allowUnauthenticated || isLoopback(opts.host)) return;
  throw new EnvError([
    `HOST: ${opts.host} is reachable from other machines, but no API key is configured (API_KEYS / API_KEYS_FILE are unset), so anyone there could read every research and trace. Set API_KEYS (e.g. API_KEYS="$(openssl rand -hex 24) admin admin"), or bind to loopback (HOST=127.0.0.1), or set ALLOW_UNAUTHENTICATED=true to run open on purpose`,
  ]);
}
