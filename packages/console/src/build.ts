import { mkdirSync, readdirSync, readFileSync, renameSync, statSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const PACKAGE_DIR = fileURLToPath(new URL("..", import.meta.url));

export interface ConsoleBuild {
  outdir: string;
  /** Empty when `ifStale` found the build up to date. */
  files: { path: string; bytes: number }[];
  ms: number;
}

/** Newest modification time under `dir` (recursively), in ms. */
function newestMtime(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestMtime(p) : statSync(p).mtimeMs);
  }
  return newest;
}

/** True when `outdir/index.html` (written last by a build) is older than a source file or the package manifest. */
function isStale(outdir: string): boolean {
  let built: number;
  try {
    built = statSync(path.join(outdir, "index.html")).mtimeMs;
  } catch {
    return true;
  }
  const sources = Math.max(newestMtime(path.join(PACKAGE_DIR, "src/web")), statSync(path.join(PACKAGE_DIR, "package.json")).mtimeMs);
  return sources > built;
}

/**
 * Replace a file in one step (write a sibling, then rename), so a browser or a test reading the
 * console while another process rebuilds it never sees half a file.
 */
function writeAtomically(file: string, contents: Uint8Array | string): void {
  mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
  writeFileSync(tmp, contents);
  renameSync(tmp, file);
}

/**
 * Bundle the console (src/web/main.tsx + styles.css, with Preact and Chart.js inlined) into
 * `outdir` (default packages/console/dist): index.html, assets/app.js, assets/app.css. Offline and
 * fast (esbuild, everything from node_modules); safe to run from several processes at once.
 * `ifStale`: do nothing when the build is newer than every source file (the test run's setup).
 */
export async function buildConsole(opts: { outdir?: string; ifStale?: boolean } = {}): Promise<ConsoleBuild> {
  const started = performance.now();
  const outdir = path.resolve(opts.outdir ?? path.join(PACKAGE_DIR, "dist"));
  if (opts.ifStale && !isStale(outdir)) return { outdir, files: [], ms: performance.now() - started };
  const result = await build({
    entryPoints: { app: path.join(PACKAGE_DIR, "src/web/main.tsx") },
    outdir: path.join(outdir, "assets"),
    bundle: true,
    platform: "browser",
    format: "esm",
    target: ["chrome110", "firefox110", "safari16"],
    jsx: "automatic",
    jsxImportSource: "preact",
    minify: true,
    sourcemap: "linked",
    sourcesContent: false,
    legalComments: "linked",
    define: { "process.env.NODE_ENV": '"production"' },
    write: false,
    logLevel: "warning",
    absWorkingDir: PACKAGE_DIR,
  });
  const files: ConsoleBuild["files"] = [];
  for (const out of result.outputFiles) {
    writeAtomically(out.path, out.contents);
    files.push({ path: path.relative(outdir, out.path), bytes: out.contents.byteLength });
  }
  // Last: its time stamp says when the build finished (isStale).
  const html = readFileSync(path.join(PACKAGE_DIR, "src/web/index.html"), "utf8");
  writeAtomically(path.join(outdir, "index.html"), html);
  files.push({ path: "index.html", bytes: Buffer.byteLength(html) });
  return { outdir, files, ms: performance.now() - started };
}
