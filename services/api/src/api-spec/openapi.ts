import { z } from "zod";
import { ErrorSchema } from "./http-schemas.js";
import { apiSchemas } from "./registry.js";
import { ROUTES, type BodyContext, type RouteSpec } from "./routes.js";

/** A JSON Schema (2020-12) or an OpenAPI object, as plain JSON. */
type Json = Record<string, unknown>;

export interface OpenApiDocument {
  openapi: "3.1.0";
  info: { title: string; version: string; description: string };
  jsonSchemaDialect: string;
  tags: { name: string; description: string }[];
  paths: Record<string, Record<string, Json>>;
  components: { schemas: Record<string, Json>; securitySchemes: Record<string, Json> };
}

const DIALECT = "https://json-schema.org/draft/2020-12/schema";
const componentRef = (id: string) => `#/components/schemas/${id}`;

/** JSON Schema of one zod schema: a $ref when it is a named component, inline otherwise. */
function schemaOf(schema: z.ZodType, io: "input" | "output"): Json {
  const id = apiSchemas.get(schema)?.id;
  if (id) return { $ref: componentRef(id) };
  const { $schema: _dialect, ...json } = z.toJSONSchema(schema, { target: "draft-2020-12", io, unrepresentable: "any" }) as Json;
  return json;
}

/** Every named answer schema, each referring to the others by $ref. */
function components(): Record<string, Json> {
  const out = z.toJSONSchema(apiSchemas, { target: "draft-2020-12", io: "output", unrepresentable: "any", uri: componentRef });
  const schemas: Record<string, Json> = {};
  for (const [id, schema] of Object.entries(out.schemas)) {
    const { $schema: _dialect, $id: _id, ...json } = schema as Json;
    schemas[id] = json;
  }
  return schemas;
}

/** "/v1/research/:id" -> "/v1/research/{id}" */
export const openApiPath = (expressPath: string) => expressPath.replace(/:([A-Za-z0-9_]+)/g, "{$1}");

function parameter(name: string, where: "path" | "query" | "header", schema: z.ZodType, description?: string): Json {
  const { description: described, ...json } = schemaOf(schema, "input");
  // The JSON Schema conversion leaves a meta `default` out (it is not the zod schema's own default).
  const meta = schema.meta() as { default?: unknown } | undefined;
  if (meta?.default !== undefined) json.default = meta.default;
  return {
    name,
    in: where,
    required: where === "path",
    ...((description ?? described) ? { description: description ?? described } : {}),
    schema: json,
  };
}

function operation(route: RouteSpec, ctx: BodyContext): Json {
  const parameters: Json[] = [
    ...Object.entries(route.params ?? {}).map(([name, p]) => parameter(name, "path", p.schema, p.description)),
    ...Object.entries(route.query?.shape ?? {}).map(([name, schema]) => parameter(name, "query", schema)),
    ...Object.entries(route.headers ?? {}).map(([name, p]) => parameter(name, "header", p.schema, p.description)),
  ];
  const responses: Record<string, Json> = {};
  const internal = { description: "internal_error (details has the trace id when there is one)", schema: ErrorSchema };
  // Every /v1 route needs an API key when the api has API_KEYS (src/auth/middleware.ts).
  const keyed = route.path.startsWith("/v1/");
  const unauthorized = {
    description: "unauthorized (no API key) or invalid_api_key, when the api has API_KEYS; WWW-Authenticate says Bearer",
    schema: ErrorSchema,
  };
  const all = { ...(keyed ? { 401: unauthorized } : {}), ...route.responses, 500: internal };
  for (const [status, r] of Object.entries(all as Record<string, RouteSpec["responses"][number]>)) {
    const type = r.contentType ?? "application/json";
    const media: Json = r.schema ? { schema: schemaOf(r.schema, "output") } : { schema: { type: "string" } };
    if (r.eventSchema) media["x-event-data"] = schemaOf(r.eventSchema, "output");
    responses[status] = {
      description: r.description,
      ...(r.headers
        ? { headers: Object.fromEntries(Object.entries(r.headers).map(([h, d]) => [h, { description: d, schema: { type: "string" } }])) }
        : {}),
      ...(r.schema || r.contentType ? { content: { [type]: media } } : {}),
    };
  }
  return {
    operationId: route.operationId,
    tags: [route.tag],
    summary: route.summary,
    ...(route.description ? { description: route.description } : {}),
    ...(parameters.length ? { parameters } : {}),
    ...(keyed ? { security: [{ apiKey: [] }] } : {}),
    ...(route.body
      ? { requestBody: { required: true, content: { "application/json": { schema: schemaOf(route.body(ctx), "input") } } } }
      : {}),
    responses,
  };
}

/**
 * The OpenAPI 3.1 document of the api, generated from the route table (paths, parameters, the
 * request body schema the api validates with) and the answer schemas (components). `ctx` is the
 * app's configuration, so limits such as MAX_QUERY_CHARS are the ones it enforces.
 */
export function buildOpenApiDocument(ctx: BodyContext): OpenApiDocument {
  const paths: Record<string, Record<string, Json>> = {};
  for (const route of Object.values(ROUTES) as RouteSpec[]) {
    (paths[openApiPath(route.path)] ??= {})[route.method] = operation(route, ctx);
  }
  return {
    openapi: "3.1.0",
    info: {
      title: "tracelane api",
      version: "0.1.0",
      description:
        "Research requests, their status and events, and the traces the trace-collector assembled. Errors are always { error: { code, message, details } }.",
    },
    jsonSchemaDialect: DIALECT,
    tags: [
      { name: "research", description: "submit, list, follow and cancel researches" },
      { name: "traces", description: "traces, anomalies and cost statistics from the trace-collector" },
      { name: "admin", description: "operations for admin API keys: re-pricing stored traces" },
      { name: "health", description: "liveness and readiness" },
      { name: "meta", description: "this description" },
    ],
    paths,
    components: {
      schemas: components(),
      securitySchemes: {
        apiKey: {
          type: "http",
          scheme: "bearer",
          description:
            "One of the api's API_KEYS as Authorization: Bearer <key> (needed only when the api has keys). A member key sees its own researches and their traces; an admin key everything.",
        },
      },
    },
  };
}
