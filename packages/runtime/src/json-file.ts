import { readFileSync } from "node:fs";

/** Read a JSON config file named by an env var; errors name the variable, the path and what is wrong. */
export function readJsonFile(path: string, envVar: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw new Error(`${envVar}: cannot read ${path}: ${(err as Error).message}`, { cause: err });
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new Error(`${envVar}: ${path} is not valid JSON: ${(err as Error).message}`, { cause: err });
  }
}
