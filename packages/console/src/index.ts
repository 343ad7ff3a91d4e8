import { existsSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import express, { Router, type Request, type Response } from "express";

/** Where the console is mounted on the api; the app's links and asset URLs start with it. */
export const CONSOLE_BASE = "/ui";

/**
 * The built console (index.html + assets/). From source this is packages/console/dist (built by
 * `buildConsole()`); inside a bundled api (`pnpm build`, the Docker image) it is the `console/`
 * folder that scripts/build.ts copies beside services/api/dist/index.js.
 */
export function consoleDir(): string {
  const candidates = [
    fileURLToPath(new URL("./console/", import.meta.url)), // bundled: <service>/dist/console
    fileURLToPath(new URL("../dist/", import.meta.url)), // source: packages/console/src -> packages/console/dist
  ];
  return candidates.find((dir) => existsSync(path.join(dir, "index.html"))) ?? candidates[candidates.length - 1]!;
}

/** The SPA's client-side routes have no file extension; anything with one is an asset (a 404 when missing). */
const looksLikeAsset = (p: string) => path.posix.extname(p) !== "";

/**
 * The console's router, to mount at CONSOLE_BASE: static assets, then index.html for every other
 * GET (so a deep link such as /ui/traces/<traceId> loads the app, which routes it). When the
 * console was never built it says so, with the command to run, instead of a bare 404.
 */
export function createConsoleRouter(opts: { dir?: string } = {}): Router {
  const dir = opts.dir ?? consoleDir();
  const index = path.join(dir, "index.html");
  const router = Router();

  router.use(
    express.static(dir, {
      index: false,
      fallthrough: true,
      // The bundle keeps its name across builds: revalidate (Last-Modified) instead of caching blindly.
      setHeaders: (res) => res.setHeader("Cache-Control", "no-cache"),
    }),
  );
  router.get(/.*/, (req: Request, res: Response) => {
    if (looksLikeAsset(req.path)) {
      res.status(404).type("text/plain").send(`No console asset at ${CONSOLE_BASE}${req.path}.`);
      return;
    }
    if (!existsSync(index)) {
      res
        .status(503)
        .type("text/plain")
        .send(`The console is not built (no ${index}). Run \`pnpm build\` (or \`pnpm --filter @tracelane/console build\`).`);
      return;
    }
    res.setHeader("Cache-Control", "no-cache");
    res.sendFile(index);
  });
  return router;
}
