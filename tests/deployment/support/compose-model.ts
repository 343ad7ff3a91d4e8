import { readdirSync, readFileSync, statSync } from "node:fs";
import path from "node:path";
import { REPO_ROOT } from "@tracelane/testkit";
import { parse } from "yaml";

/** A compose service that runs one of our entrypoints. */
export interface ComposeTracelaneService {
  composeName: string;
  /** services/<name> the command runs. */
  service: string;
  command: string[];
  /** The environment as the container gets it with an empty .env: ${VAR:-default} resolved to its default. */
  environment: Record<string, string>;
}

export interface ComposeFile {
  text: string;
  services: Record<string, Record<string, unknown>>;
  tracelane: ComposeTracelaneService[];
  /** Every ${VAR} the file interpolates. */
  interpolated: string[];
}

/** Compose interpolation with nothing set: `${A:-x}` and `${A-x}` give x, `${A}` and `$A` give "", `$$` gives `$`. */
// `$$` is a literal dollar: hold it aside as a character no compose file contains.
const DOLLAR = "\u0000";

export function interpolateWithDefaults(value: string): string {
  return value
    .replace(/\$\$/g, DOLLAR)
    .replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?-([^}]*))?\}/g, (_m, _name: string, fallback?: string) => fallback ?? "")
    .replace(/\$([A-Za-z_][A-Za-z0-9_]*)/g, "")
    .replaceAll(DOLLAR, "$");
}

function environmentOf(raw: unknown): Record<string, string> {
  if (raw === undefined || raw === null) return {};
  const entries: Array<[string, string]> = Array.isArray(raw)
    ? raw.map((line: string) => {
        const eq = line.indexOf("=");
        return eq < 0 ? [line, ""] : [line.slice(0, eq), line.slice(eq + 1)];
      })
    : Object.entries(raw as Record<string, unknown>).map(([k, v]) => [k, v === null ? "" : String(v)]);
  return Object.fromEntries(entries.map(([k, v]) => [k, interpolateWithDefaults(v)]));
}

export function loadCompose(file = path.join(REPO_ROOT, "docker-compose.yml")): ComposeFile {
  const text = readFileSync(file, "utf8");
  // `merge: true`: the file shares settings through YAML anchors and `<<` merge keys.
  const doc = parse(text, { merge: true }) as { services: Record<string, Record<string, unknown>> };
  const tracelane: ComposeTracelaneService[] = [];
  for (const [composeName, svc] of Object.entries(doc.services)) {
    const command = svc.command;
    if (!Array.isArray(command)) continue;
    const entry = command.find((part: unknown) => typeof part === "string" && /^services\/[^/]+\/dist\/index\.js$/.test(part)) as
      string | undefined;
    if (!entry) continue;
    tracelane.push({
      composeName,
      service: entry.split("/")[1]!,
      command: command as string[],
      environment: environmentOf(svc.environment),
    });
  }
  // Comments may show the syntax (`${VAR:-default}`); only values count.
  const values = text.replace(/(^|\s)#.*$/gm, "");
  const interpolated = [...new Set([...values.matchAll(/\$\{([A-Za-z_][A-Za-z0-9_]*)/g)].map((m) => m[1]!))].sort();
  return { text, services: doc.services, tracelane, interpolated };
}

/** Names a .env.example line sets or shows commented out: `NAME=...` or `# NAME=...`. */
export function documentedNames(file = path.join(REPO_ROOT, ".env.example")): Set<string> {
  const names = new Set<string>();
  for (const line of readFileSync(file, "utf8").split("\n")) {
    const m = /^#?\s*([A-Z][A-Z0-9_]*)=/.exec(line);
    if (m) names.add(m[1]!);
  }
  return names;
}

interface WorkspacePackage {
  name: string;
  dir: string;
  dependencies: Record<string, string>;
}

function workspacePackages(): Map<string, WorkspacePackage> {
  const out = new Map<string, WorkspacePackage>();
  for (const group of ["packages", "services"]) {
    for (const entry of readdirSync(path.join(REPO_ROOT, group))) {
      const dir = path.join(REPO_ROOT, group, entry);
      try {
        const pkg = JSON.parse(readFileSync(path.join(dir, "package.json"), "utf8")) as {
          name: string;
          dependencies?: Record<string, string>;
        };
        out.set(pkg.name, { name: pkg.name, dir, dependencies: pkg.dependencies ?? {} });
      } catch {
        // not a package
      }
    }
  }
  return out;
}

/** The service's package and every workspace package it runs with (runtime dependencies, transitively). */
export function runtimeClosure(service: string): WorkspacePackage[] {
  const all = workspacePackages();
  const root = [...all.values()].find((p) => p.dir === path.join(REPO_ROOT, "services", service));
  if (!root) throw new Error(`services/${service} has no package.json`);
  const seen = new Map<string, WorkspacePackage>();
  const visit = (p: WorkspacePackage) => {
    if (seen.has(p.name)) return;
    seen.set(p.name, p);
    for (const [dep, spec] of Object.entries(p.dependencies)) {
      const next = all.get(dep);
      if (next && spec.startsWith("workspace:")) visit(next);
    }
  };
  visit(root);
  return [...seen.values()];
}

function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir)) {
    const full = path.join(dir, entry);
    if (statSync(full).isDirectory()) out.push(...sourceFiles(full));
    else if (/\.(ts|js|mjs)$/.test(entry) && !/\.test\.ts$/.test(entry)) out.push(full);
  }
  return out;
}

/** All `src/` text of the service and the workspace packages it runs with. */
export function closureSource(service: string): string {
  return runtimeClosure(service)
    .flatMap((p) => sourceFiles(path.join(p.dir, "src")))
    .map((f) => readFileSync(f, "utf8"))
    .join("\n");
}

/**
 * Environment variables the code visibly reads: keys of the env schemas (`NAME: ...` in env.ts or
 * *-env.ts files) and `env.NAME` / `process.env.NAME` accesses anywhere in src.
 */
export function variablesReadIn(service: string): Set<string> {
  const names = new Set<string>();
  for (const p of runtimeClosure(service)) {
    for (const file of sourceFiles(path.join(p.dir, "src"))) {
      const text = readFileSync(file, "utf8");
      if (/(^|[-/])env\.ts$/.test(file)) {
        for (const m of text.matchAll(/^\s+([A-Z][A-Z0-9_]{2,}):\s/gm)) names.add(m[1]!);
      }
      for (const m of text.matchAll(/\benv\.([A-Z][A-Z0-9_]{2,})\b/g)) names.add(m[1]!);
    }
  }
  return names;
}
