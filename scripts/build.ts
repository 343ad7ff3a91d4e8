/**
 * `pnpm build [service...]`: bundle every service (or the named ones) into
 * services/<name>/dist/index.js, runnable with plain `node` (no tsx): our workspace
 * packages are inlined, third-party packages stay imports resolved from node_modules.
 * The web console is built too and copied to services/api/dist/console, where the bundled
 * api serves it from (consoleDir()).
 */
import { cpSync } from "node:fs";
import path from "node:path";
import { buildConsole } from "@tracelane/console/build";
import { resolveServiceName, REPO_ROOT, SERVICES } from "@tracelane/launcher";
import { table } from "./lib/format.js";
import { bundleService } from "./lib/bundle-service.js";

async function main(): Promise<void> {
  const names = process.argv.slice(2).filter((a) => a !== "--");
  const specs = names.length === 0 ? SERVICES : names.map((n) => SERVICES.find((s) => s.name === resolveServiceName(n))!);
  const started = performance.now();
  const consoleBuild = specs.some((s) => s.name === "api") ? await buildConsole() : undefined;
  const results = await Promise.all(specs.map((s) => bundleService({ name: s.name, root: REPO_ROOT, entry: s.entry, outfile: s.dist })));
  if (consoleBuild) cpSync(consoleBuild.outdir, path.join(REPO_ROOT, "services/api/dist/console"), { recursive: true });
  console.log(
    table(
      ["service", "output", "size", "third-party packages", "time"],
      results.map((r) => [
        r.name,
        `services/${r.name}/dist/index.js`,
        `${(r.bytes / 1024).toFixed(0)} KiB`,
        r.externals.size,
        `${Math.round(r.ms)} ms`,
      ]),
    ),
  );
  if (consoleBuild) {
    const kib = consoleBuild.files.reduce((n, f) => n + (f.path.endsWith(".map") ? 0 : f.bytes), 0) / 1024;
    console.log(`\nweb console: services/api/dist/console (${kib.toFixed(0)} KiB, ${Math.round(consoleBuild.ms)} ms), served at /ui`);
  }
  console.log(
    `\nbuilt ${results.length} service(s) in ${Math.round(performance.now() - started)} ms; run one with: node services/<name>/dist/index.js`,
  );
}

main().catch((err: unknown) => {
  // esbuild already printed its diagnostics with file and line; this is the summary.
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
