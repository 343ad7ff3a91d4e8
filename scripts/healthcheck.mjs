#!/usr/bin/env node
// Container HEALTHCHECK for every tracelane service; dependency-free (runs in the image, no node_modules).
//
//   node scripts/healthcheck.mjs            GET http://127.0.0.1:<port>/healthz
//   node scripts/healthcheck.mjs /readyz    same port, another path
//
// The URL is HEALTHCHECK_URL when set; otherwise the port is HEALTH_PORT (stage workers serve
// /healthz there), else PORT (api, trace-collector, llm-simulator), else 3000 (the api's default,
// the image's default command). Exit 0 on a 2xx answer, 1 otherwise.

const TIMEOUT_MS = 3_000;
const DEFAULT_PORT = "3000";

const isSet = (v) => v !== undefined && v.trim() !== "" && v.trim() !== "0";

function healthUrl(env, pathArg) {
  if (isSet(env.HEALTHCHECK_URL)) return env.HEALTHCHECK_URL.trim();
  const port = [env.HEALTH_PORT, env.PORT].find(isSet)?.trim() ?? DEFAULT_PORT;
  const path = pathArg ?? "/healthz";
  return `http://127.0.0.1:${port}${path.startsWith("/") ? path : `/${path}`}`;
}

const url = healthUrl(process.env, process.argv[2]);
try {
  const res = await fetch(url, { signal: AbortSignal.timeout(TIMEOUT_MS) });
  if (!res.ok) {
    console.error(`unhealthy: GET ${url} -> ${res.status} ${(await res.text()).slice(0, 300)}`);
    process.exit(1);
  }
  process.exit(0);
} catch (err) {
  const hint = [process.env.HEALTHCHECK_URL, process.env.HEALTH_PORT, process.env.PORT].some(isSet)
    ? ""
    : " (no HEALTHCHECK_URL, HEALTH_PORT or PORT set; a stage worker needs HEALTH_PORT for its /healthz)";
  console.error(`unhealthy: GET ${url}: ${err instanceof Error ? (err.cause?.message ?? err.message) : String(err)}${hint}`);
  process.exit(1);
}
