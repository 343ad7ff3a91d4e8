import { existsSync, mkdirSync, realpathSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { isBuiltin } from "node:module";
import path from "node:path";
import { build, type Metafile, type Plugin } from "esbuild";

/** What one service's bundle is made of. */
export interface BundleResult {
  name: string;
  outfile: string;
  bytes: number;
  ms: number;
  /** Third-party packages the bundle imports at runtime, each with the directory it resolves to. */
  externals: Map<string, string>;
}

const WORKSPACE_SCOPE = "@tracelane/";

// ESM output has no `require`; CommonJS code pulled into the bundle (none today) would need one.
const BANNER =
  'import { createRequire as __tracelaneCreateRequire } from "node:module";\nconst require = __tracelaneCreateRequire(import.meta.url);';

/** `@scope/name/sub/path` -> `@scope/name`, `name/sub` -> `name`. */
export function packageNameOf(specifier: string): string {
  const parts = specifier.split("/");
  return specifier.startsWith("@") ? parts.slice(0, 2).join("/") : parts[0]!;
}

/** Node's lookup: the first `node_modules/<name>` from `fromDir` upwards, as a real path. */
export function findPackageDir(name: string, fromDir: string): string | undefined {
  for (let dir = fromDir; ; dir = path.dirname(dir)) {
    const candidate = path.join(dir, "node_modules", name);
    if (existsSync(path.join(candidate, "package.json"))) return realpathSync(candidate);
    if (path.dirname(dir) === dir) return undefined;
  }
}

/**
 * Bundle our own workspace packages (TypeScript source) and leave every third-party
 * package as a bare import. Each external is resolved from the file that imports it, so
 * the version is the one that workspace package declared; the bundle then links it.
 */
function externalizeThirdParty(externals: Map<string, string>): Plugin {
  return {
    name: "tracelane-externals",
    setup(b) {
      b.onResolve({ filter: /^[^./]/ }, (args) => {
        // Entry points, our own packages and `#subpath` imports: esbuild resolves (and bundles) them.
        if (args.kind === "entry-point" || args.path.startsWith(WORKSPACE_SCOPE) || args.path.startsWith("#")) return undefined;
        if (isBuiltin(args.path)) return { path: args.path, external: true };
        const name = packageNameOf(args.path);
        const dir = findPackageDir(name, args.resolveDir);
        if (!dir) {
          return { errors: [{ text: `cannot find package "${name}" from ${args.resolveDir}: add it to that package's dependencies` }] };
        }
        const seen = externals.get(name);
        if (seen !== undefined && seen !== dir) {
          return { errors: [{ text: `"${name}" resolves to two installs (${seen} and ${dir}); one bundle can only link one` }] };
        }
        externals.set(name, dir);
        return { path: args.path, external: true };
      });
    },
  };
}

/**
 * `dist/node_modules/<pkg>` -> the install each external resolved to. A service's own
 * node_modules only holds its direct dependencies (pnpm's isolated layout), but the bundle
 * also imports the dependencies of the workspace packages inlined into it; these links make
 * all of them resolvable from dist/index.js, with the exact versions the lockfile chose.
 * Relative links into node_modules/.pnpm, so they hold wherever the repository (or the
 * image's /app) is, as long as node_modules was installed from the same lockfile.
 */
function linkExternals(distDir: string, externals: Map<string, string>): void {
  const modules = path.join(distDir, "node_modules");
  for (const [name, target] of externals) {
    const link = path.join(modules, name);
    mkdirSync(path.dirname(link), { recursive: true });
    symlinkSync(path.relative(path.dirname(link), target), link, "dir");
  }
}

/** Bundle one service entrypoint into `<dist>/index.js` (+ sourcemap, package.json, node_modules links). */
export async function bundleService(opts: { name: string; root: string; entry: string; outfile: string }): Promise<BundleResult> {
  const started = performance.now();
  const entry = path.resolve(opts.root, opts.entry);
  const outfile = path.resolve(opts.root, opts.outfile);
  const distDir = path.dirname(outfile);
  rmSync(distDir, { recursive: true, force: true });

  const externals = new Map<string, string>();
  const result = await build({
    entryPoints: [entry],
    outfile,
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    sourcemap: true,
    // Mappings are enough for stack traces (`node --enable-source-maps`); no source text in dist.
    sourcesContent: false,
    // Error and class names survive esbuild's renaming of colliding identifiers.
    keepNames: true,
    // prices.json and any other JSON import is inlined (esbuild's default loader for .json).
    banner: { js: BANNER },
    plugins: [externalizeThirdParty(externals)],
    metafile: true,
    logLevel: "warning",
    absWorkingDir: opts.root,
  });

  // dist is ESM whatever sits next to it: the image copies dist without the service's package.json.
  writeFileSync(path.join(distDir, "package.json"), `${JSON.stringify({ type: "module", private: true }, null, 2)}\n`);
  linkExternals(distDir, externals);
  assertOnlyExternalsLeft(result.metafile, externals);

  return { name: opts.name, outfile, bytes: statSync(outfile).size, ms: performance.now() - started, externals };
}

/** Every import left in the output is a builtin or a package we linked. */
function assertOnlyExternalsLeft(metafile: Metafile, externals: Map<string, string>): void {
  for (const output of Object.values(metafile.outputs)) {
    for (const imp of output.imports) {
      if (!imp.external || isBuiltin(imp.path)) continue;
      if (!externals.has(packageNameOf(imp.path))) throw new Error(`bundle imports "${imp.path}", which was not linked`);
    }
  }
}
