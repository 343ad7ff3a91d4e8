import type { OpenApiDocument } from "./openapi.js";

/**
 * GET /docs: the OpenAPI document as one plain HTML page for people (no script, no assets from
 * anywhere): each operation with its parameters and answers, grouped by tag. Everything on it comes
 * from the document, so it cannot say something else than /openapi.json.
 */

type Json = Record<string, any>;

const escape = (s: unknown) =>
  String(s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!);

/** A short type for a parameter or body schema: "string", "integer 1..200", "research | all", "Research". */
function typeOf(schema: Json | undefined): string {
  if (!schema) return "";
  if (typeof schema.$ref === "string") return schema.$ref.split("/").at(-1)!;
  if (Array.isArray(schema.enum)) return schema.enum.join(" | ");
  const range = schema.minimum !== undefined || schema.maximum !== undefined ? ` ${schema.minimum ?? ""}..${schema.maximum ?? ""}` : "";
  return `${schema.type ?? "any"}${range}${schema.default !== undefined ? ` (default ${schema.default})` : ""}`;
}

function operation(method: string, path: string, op: Json): string {
  const params = ((op.parameters ?? []) as Json[])
    .map(
      (p) =>
        `<tr><td><code>${escape(p.name)}</code></td><td>${escape(p.in)}</td><td>${escape(typeOf(p.schema))}</td><td>${escape(p.description ?? "")}</td></tr>`,
    )
    .join("");
  const body = op.requestBody?.content?.["application/json"]?.schema as Json | undefined;
  const bodyFields = body?.properties
    ? Object.entries(body.properties as Record<string, Json>)
        .map(
          ([name, s]) =>
            `<code>${escape(name)}</code>${(body.required ?? []).includes(name) ? " (required)" : ""}: ${escape(s.description ?? typeOf(s))}`,
        )
        .join("; ")
    : "";
  const answers = Object.entries(op.responses as Record<string, Json>)
    .map(([status, r]) => {
      const [type, media] = Object.entries((r.content ?? {}) as Record<string, Json>)[0] ?? [];
      const shape = media ? ` — ${escape(type)}${media.schema ? ` ${escape(typeOf(media.schema))}` : ""}` : "";
      return `<li><b>${escape(status)}</b> ${escape(r.description)}${shape}</li>`;
    })
    .join("");
  return `<section id="${escape(op.operationId)}">
<h3><span class="m ${escape(method)}">${escape(method.toUpperCase())}</span> <code>${escape(path)}</code></h3>
<p>${escape(op.summary)}${op.description ? `. ${escape(op.description)}` : ""}</p>
${params ? `<table><tr><th>parameter</th><th>in</th><th>type</th><th></th></tr>${params}</table>` : ""}
${bodyFields ? `<p>Body (JSON): ${bodyFields}</p>` : ""}
<ul>${answers}</ul>
</section>`;
}

export function renderDocsPage(doc: OpenApiDocument): string {
  const sections = doc.tags
    .map((tag) => {
      const ops = Object.entries(doc.paths).flatMap(([path, methods]) =>
        Object.entries(methods)
          .filter(([, op]) => (op.tags as string[] | undefined)?.includes(tag.name))
          .map(([method, op]) => operation(method, path, op)),
      );
      return ops.length ? `<h2>${escape(tag.name)}</h2><p>${escape(tag.description)}</p>${ops.join("\n")}` : "";
    })
    .join("\n");
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escape(doc.info.title)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body { font: 15px/1.5 system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; padding: 0 1rem; color: #1d2430; }
h2 { border-bottom: 1px solid #d0d7de; margin-top: 2.5rem; } h3 { margin-bottom: .2rem; font-size: 1.05rem; }
code { font: 13px ui-monospace, monospace; background: #f3f4f6; padding: 0 .25rem; border-radius: 3px; }
table { border-collapse: collapse; margin: .4rem 0; } td, th { border: 1px solid #d0d7de; padding: .2rem .5rem; text-align: left; vertical-align: top; font-size: 14px; }
.m { display: inline-block; min-width: 4.2rem; text-align: center; color: #fff; border-radius: 4px; font-size: 12px; padding: .1rem .3rem; }
.get { background: #1f6feb; } .post { background: #1a7f37; } .delete { background: #cf222e; }
ul { margin-top: .3rem; }
</style></head><body>
<h1>${escape(doc.info.title)} <small>${escape(doc.info.version)}</small></h1>
<p>${escape(doc.info.description)} The machine-readable description is <a href="/openapi.json">/openapi.json</a> (OpenAPI ${escape(doc.openapi)}).</p>
${sections}
</body></html>`;
}
