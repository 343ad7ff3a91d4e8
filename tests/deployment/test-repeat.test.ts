import { spawnSync } from "node:child_process";
import { resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { REPO_ROOT } from "@tracelane/testkit";

const repeat = (...args: string[]) =>
  spawnSync(resolve(REPO_ROOT, "node_modules/.bin/tsx"), ["scripts/test-repeat.ts", ...args], {
    cwd: REPO_ROOT,
    encoding: "utf8",
    env: { ...process.env, TRACELANE_REPEAT_FIXTURE: "1", INIT_CWD: REPO_ROOT },
  });

describe("pnpm test:repeat", () => {
  it("runs a file n times and fails naming the runs that failed", () => {
    const out = repeat("tests/deployment/fixtures/fails-on-even-runs.test.ts", "3");
    expect(out.stdout).toMatch(/run 1\/3: passed/);
    expect(out.stdout).toMatch(/run 2\/3: FAILED/);
    expect(out.stdout).toMatch(/run 3\/3: passed/);
    expect(out.stderr).toMatch(/failed runs: 2 of 3 \(2 passed\): tests\/deployment\/fixtures\/fails-on-even-runs\.test\.ts/);
    expect(out.status).toBe(1);
  });

  it("stops at the first failing run with --bail, and passes when every run passes", () => {
    const bailed = repeat("tests/deployment/fixtures/fails-on-even-runs.test.ts", "5", "--bail");
    expect(bailed.status).toBe(1);
    expect(bailed.stdout).not.toMatch(/run 3\/5/);
    expect(bailed.stderr).toMatch(/failed runs: 2 of 2 \(1 passed\)/);

    const once = repeat("tests/deployment/fixtures/fails-on-even-runs.test.ts", "1");
    expect(once.stdout).toMatch(/1 of 1 runs passed/);
    expect(once.status).toBe(0);
  });

  it("refuses a missing file or a bad count with usage and exit 2", () => {
    const missing = repeat("tests/nope.test.ts");
    expect(missing.status).toBe(2);
    expect(missing.stderr).toMatch(
      /no such file: tests\/nope\.test\.ts\nusage: pnpm test:repeat <test file> \[runs, default 10\] \[--bail\]/,
    );
    expect(repeat("tests/deployment/fixtures/fails-on-even-runs.test.ts", "zero").stderr).toMatch(
      /runs must be a whole number of at least 1, got "zero"/,
    );
  });
});
