/**
 * `pnpm build [service...]`: bundle every service (or the named ones) into
 * services/<name>/dist/index.js, runnable with plain `node` (no tsx): our workspace
 * packages are inlined, third-party packages stay imports resolved from node_modules.
 */
import { resolveServiceName, REPO_ROOT, SERVICES } from "@tracelane/launcher";
import { table } from "./lib/format.js";
import { bundleService } from "./lib/bundle-service.js";

async function main(): Promise<void> {
  const names = process.argv.slice(2).filter((a) => a !== "--");
  const specs = names.length === 0 ? SERVICES : names.map((n) => SERVICES.find((s) => s.name === resolveServiceName(n))!);
  const started = performance.now();
  const results = await Promise.all(specs.map((s) => bundleService({ name: s.name, root: REPO_ROOT, entry: s.entry, outfile: s.dist })));
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
  console.log(
    `\nbuilt ${results.length} service(s) in ${Math.round(performance.now() - started)} ms; run one with: node services/<name>/dist/index.js`,
  );
}

main().catch((err: unknown) => {
  // esbuild already printed its diagnostics with file and line; this is the summary.
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
