import { createBullBoard } from "@bull-board/api";
import { BullMQAdapter } from "@bull-board/api/bullMQAdapter";
import { ExpressAdapter } from "@bull-board/express";
import { Router, type Express } from "express";
import type { StageQueues } from "@tracelane/queue-contract";

/** Where the api serves Bull Board. */
export const QUEUE_BOARD_PATH = "/admin/queues";

/**
 * The board loads nothing from outside the api, so it works the same with no network access:
 * its page links Google Fonts, which we drop (it falls back to a system font), and this policy
 * blocks anything a later version might add.
 */
const CONTENT_SECURITY_POLICY = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data:",
  "font-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'self'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join("; ");
const EXTERNAL_STYLESHEET = /<link\b[^>]*href="https?:\/\/[^"]*"[^>]*>/g;

type RenderFile = (file: string, options: object, done: (err: Error | null, html?: string) => void) => void;

/**
 * Bull Board over the api's own stage queues (so their prefix and connection), one entry per
 * stage of the pipeline, read-write: jobs can be retried, promoted and removed.
 * Mounted by app.ts at QUEUE_BOARD_PATH.
 */
export function createQueueBoardRouter(queues: StageQueues): Router {
  const serverAdapter = new ExpressAdapter().setBasePath(QUEUE_BOARD_PATH);
  createBullBoard({
    queues: queues.pipeline.stages.flatMap((s) =>
      queues.shardsOf(s.stage).map(
        (queue, shard, all) =>
          new BullMQAdapter(queue, {
            readOnlyMode: false,
            allowRetries: true,
            displayName: queue.name,
            description: `stage ${s.index + 1} of ${queues.pipeline.stages.length}: ${s.stage}, consumed by ${s.service}${all.length > 1 ? ` (shard ${shard + 1} of ${all.length})` : ""}`,
          }),
      ),
    ),
    serverAdapter,
    options: { uiConfig: { boardTitle: "tracelane queues", sortQueues: false } },
  });
  const router = Router();
  router.use((_req, res, next) => {
    res.setHeader("Content-Security-Policy", CONTENT_SECURITY_POLICY);
    next();
  });
  // Bull Board is an Express app of its own: the api's settings do not reach it.
  const board = serverAdapter.getRouter() as Express;
  board.disable("x-powered-by");
  const render = (board as unknown as { engines: Record<string, RenderFile> }).engines[".ejs"];
  if (render) {
    board.engine("ejs", (file, options, done) =>
      render(file, options, (err, html) => (err ? done(err) : done(null, html?.replace(EXTERNAL_STYLESHEET, "")))),
    );
  }
  router.use(board);
  return router;
}
