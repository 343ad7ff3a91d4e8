import { RULE_SETTINGS, RULES } from "./registry.js";

const cell = (text: string) => text.replaceAll("|", "\\|");

/**
 * The README's table of anomaly rules, from the registry (a test checks the README holds exactly
 * this): type, scope, what fires it, each setting with its default, env variable and file key,
 * and the recommendation.
 */
export function rulesDocTable(): string {
  const rows = RULES.map((rule) => {
    const settings = RULE_SETTINGS.filter((s) => s.rule === rule)
      .map(({ setting }) => `${setting.schema.parse(undefined)} ${setting.doc} (\`${setting.env}\`, \`${setting.file}\`)`)
      .join("; ");
    return `| \`${rule.type}\` | ${rule.scope === "call" ? "model call" : "trace"} | ${cell(rule.fires)} | ${cell(settings || "—")} | ${cell(rule.recommendation)} |`;
  });
  return ["| Type | Scope | Fires when | Threshold: default (env, file key) | Recommendation |", "|---|---|---|---|---|", ...rows].join(
    "\n",
  );
}
