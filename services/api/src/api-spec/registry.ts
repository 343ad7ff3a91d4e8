import { z } from "zod";

/**
 * The named schemas of the api's answers: each becomes `#/components/schemas/<id>` in the OpenAPI
 * document (openapi.ts), and every schema that uses it refers to it there.
 */
export const apiSchemas = z.registry<{ id: string }>();
