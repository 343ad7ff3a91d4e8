/**
 * `pnpm test:repeat <file> [n] [--bail]`: run one test file n times (default 10), each in a fresh vitest
 * process, and exit non-zero naming every run that failed. A flake shows up as "failed runs: 3, 7 of 10"
 * instead of a green run that happened to be lucky.
 */
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { dirname, resolve } from "node:path";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const usage = "usage: pnpm test:repeat <test file> [runs, default 10] [--bail]";

const args = process.argv.slice(2).filter((a) => a !== "--");
const bail = args.includes("--bail");
const [file, countArg, ...extra] = args.filter((a) => a !== "--bail");
const fail = (message: string): never => {
  console.error(`test:repeat: ${message}\n${usage}`);
  process.exit(2);
};
if (file === undefined) fail("name the test file to repeat");
if (extra.length > 0) fail(`unexpected arguments: ${extra.join(" ")}`);
const runs = countArg === undefined ? 10 : Number(countArg);
if (!Number.isInteger(runs) || runs < 1) fail(`runs must be a whole number of at least 1, got "${countArg}"`);
// pnpm runs scripts from the root; a path relative to where the user typed the command still works.
const cwd = process.env.INIT_CWD ?? process.cwd();
const path = [resolve(cwd, file!), resolve(root, file!)].find((p) => existsSync(p));
if (path === undefined) fail(`no such file: ${file}`);

const vitest = resolve(root, "node_modules/.bin/vitest");
const failed: number[] = [];
for (let run = 1; run <= runs; run++) {
  const started = Date.now();
  // The default reporter only: the config's JSON report belongs to `pnpm test` and .ci/run.
  // TEST_REPEAT_RUN tells a test which run it is in (to log it, or to reproduce "fails on run 7").
  const env = { ...process.env, NO_COLOR: "1", FORCE_COLOR: undefined, TEST_REPEAT_RUN: String(run) };
  const result = spawnSync(vitest, ["run", path!, "--reporter=default"], { cwd: root, encoding: "utf8", env });
  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  if (result.status === 0) {
    console.log(`run ${run}/${runs}: passed (${seconds} s)`);
    continue;
  }
  failed.push(run);
  console.log(`run ${run}/${runs}: FAILED (${seconds} s, exit ${result.status ?? result.signal})`);
  process.stdout.write(`${result.stdout}${result.stderr}\n`);
  if (bail) break;
}

const total = bail && failed.length > 0 ? failed.at(-1)! : runs;
if (failed.length === 0) {
  console.log(`test:repeat: ${runs} of ${runs} runs passed: ${file}`);
} else {
  console.error(`test:repeat: failed runs: ${failed.join(", ")} of ${total} (${total - failed.length} passed): ${file}`);
  process.exit(1);
}
