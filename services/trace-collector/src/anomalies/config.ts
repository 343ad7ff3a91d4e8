import { EnvError, readJsonFile } from "@tracelane/runtime";
import { ANOMALY_TYPES, AnomalyTypeSchema, type AnomalyType } from "@tracelane/trace-store";
import { z } from "zod";
import { DEFAULT_RULES, RULE_SETTINGS, RULES_DISABLED_ENV, RULES_FILE_ENV, type AnomalyRules } from "./registry.js";

/**
 * The rules file (TRACELANE_ANOMALY_RULES), from the registry: each setting at its `file` path
 * ("call.latencyMs" is `{"call": {"latencyMs": ...}}`), every field optional, unknown fields
 * rejected by name, plus `disabled` (anomaly types to switch off).
 */
function buildRulesFileSchema() {
  const groups = new Map<string, Record<string, z.ZodNumber>>();
  for (const { setting } of RULE_SETTINGS) {
    const [group, key, ...rest] = setting.file.split(".");
    if (!group || !key || rest.length > 0) throw new Error(`rule setting file path "${setting.file}" must be "<group>.<key>"`);
    const shape = groups.get(group) ?? {};
    shape[key] = setting.schema.unwrap();
    groups.set(group, shape);
  }
  const shape: Record<string, z.ZodType> = {};
  for (const [group, fields] of groups) shape[group] = z.object(fields).partial().strict().optional();
  shape.disabled = z.array(AnomalyTypeSchema).optional();
  return z.object(shape).strict();
}

const RulesFileSchema = buildRulesFileSchema();
type RulesFile = { disabled?: AnomalyType[] } & Record<string, Record<string, number> | undefined>;

function parseRulesFile(json: unknown, origin = "anomaly rules"): RulesFile {
  const result = RulesFileSchema.safeParse(json);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    const keys = issue.code === "unrecognized_keys" ? ` (${issue.keys.join(", ")})` : "";
    throw new Error(`${origin}: ${issue.path.join(".") || "(root)"}: ${issue.message}${keys}`);
  }
  return result.data as RulesFile;
}

const blank = (v: string | undefined) => v === undefined || v.trim() === "";

/**
 * Defaults, then the rules file, then each setting's env variable (TRACELANE_RULE_*), then
 * TRACELANE_RULES_DISABLED over the file's `disabled`. Bad env values throw one EnvError naming
 * each variable (blank counts as unset).
 */
export function loadRules(path: string | undefined, env: Record<string, string | undefined> = {}): AnomalyRules {
  const file: RulesFile = path ? parseRulesFile(readJsonFile(path, RULES_FILE_ENV), `${RULES_FILE_ENV} ${path}`) : {};
  const issues: string[] = [];
  const settings = structuredClone(DEFAULT_RULES.settings);

  for (const { rule, name, setting } of RULE_SETTINGS) {
    const [group, key] = setting.file.split(".") as [string, string];
    const fromFile = file[group]?.[key];
    if (fromFile !== undefined) settings[rule.type][name] = fromFile;
    const raw = env[setting.env];
    if (blank(raw)) continue;
    const parsed = setting.schema.safeParse(Number(raw!.trim()));
    if (parsed.success && Number.isFinite(parsed.data)) settings[rule.type][name] = parsed.data;
    else
      issues.push(`${setting.env}: ${parsed.error?.issues[0]?.message ?? "must be a number"} (${setting.doc}; got ${JSON.stringify(raw)})`);
  }

  let disabled: AnomalyType[] = file.disabled ?? DEFAULT_RULES.disabled;
  const rawDisabled = env[RULES_DISABLED_ENV];
  if (!blank(rawDisabled)) {
    const names = rawDisabled!
      .split(",")
      .map((s) => s.trim())
      .filter(Boolean);
    const unknown = names.filter((n) => !(ANOMALY_TYPES as readonly string[]).includes(n));
    if (unknown.length > 0)
      issues.push(
        `${RULES_DISABLED_ENV}: unknown anomaly type "${unknown.join('", "')}"; known: ${ANOMALY_TYPES.join(", ")} (got ${JSON.stringify(rawDisabled)})`,
      );
    else disabled = names as AnomalyType[];
  }
  if (issues.length > 0) throw new EnvError(issues);
  return { settings, disabled };
}
