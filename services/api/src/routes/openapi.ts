import { Router } from "express";
import { renderDocsPage } from "../api-spec/docs-page.js";
import { buildOpenApiDocument } from "../api-spec/openapi.js";
import { ROUTES, type BodyContext } from "../api-spec/routes.js";

/** GET /openapi.json and GET /docs: the document of this app's routes (and its page), generated once with its configuration. */
export function createOpenApiRouter(ctx: BodyContext): Router {
  const router = Router();
  const document = buildOpenApiDocument(ctx);
  const json = JSON.stringify(document);
  const page = renderDocsPage(document);
  router.get(ROUTES.openapi.path, (_req, res) => {
    res.type("application/json").send(json);
  });
  router.get(ROUTES.docs.path, (_req, res) => {
    res.type("text/html; charset=utf-8").send(page);
  });
  return router;
}
