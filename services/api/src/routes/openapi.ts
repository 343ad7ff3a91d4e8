import { Router } from "express";
import { buildOpenApiDocument } from "../api-spec/openapi.js";
import { ROUTES, type BodyContext } from "../api-spec/routes.js";

/** GET /openapi.json: the document of this app's routes, generated once with its configuration. */
export function createOpenApiRouter(ctx: BodyContext): Router {
  const router = Router();
  const document = JSON.stringify(buildOpenApiDocument(ctx));
  router.get(ROUTES.openapi.path, (_req, res) => {
    res.type("application/json").send(document);
  });
  return router;
}
