import { existsSync, readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { REPO_ROOT } from "@tracelane/testkit";

interface Manifest {
  name: string;
  scripts?: Record<string, string>;
  dependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
}

const workspaceDirs = [
  ".",
  "tests",
  "scripts",
  ...["packages", "services"].flatMap((d) => readdirSync(path.join(REPO_ROOT, d)).map((x) => `${d}/${x}`)),
].filter((d) => existsSync(path.join(REPO_ROOT, d, "package.json")));
const manifests = workspaceDirs.map((d) => JSON.parse(readFileSync(path.join(REPO_ROOT, d, "package.json"), "utf8")) as Manifest);

/** Every third-party direct dependency: name -> the versions asked for, and by whom. */
function directDependencies() {
  const deps = new Map<string, { versions: Set<string>; by: string[] }>();
  for (const m of manifests) {
    for (const [name, version] of Object.entries({ ...m.dependencies, ...m.devDependencies })) {
      if (version.startsWith("workspace:")) continue;
      const entry = deps.get(name) ?? { versions: new Set(), by: [] };
      entry.versions.add(version);
      entry.by.push(m.name);
      deps.set(name, entry);
    }
  }
  return deps;
}

describe("dependency policy: pinned and reviewed, no registry audit in CI", () => {
  it("pins every direct dependency to one exact version across the workspace", () => {
    const deps = directDependencies();
    expect(deps.size).toBeGreaterThan(20);
    const loose = [...deps].filter(([, d]) => [...d.versions].some((v) => !/^\d+\.\d+\.\d+$/.test(v)));
    expect(
      loose.map(([n, d]) => `${n}@${[...d.versions].join("|")}`),
      "use an exact version (x.y.z), not a range",
    ).toEqual([]);
    const split = [...deps].filter(([, d]) => d.versions.size > 1);
    expect(
      split.map(([n, d]) => `${n}: ${[...d.versions].join(" vs ")}`),
      "one version per package",
    ).toEqual([]);
  });

  it("lists every direct dependency at its pinned version in docs/dependencies.md (a new or bumped one is reviewed there)", () => {
    const doc = readFileSync(path.join(REPO_ROOT, "docs/dependencies.md"), "utf8");
    const rows = new Map(
      [...doc.matchAll(/^\| (\S+) \| (\S+) \|/gm)].filter((m) => m[1] !== "package" && m[1] !== "---").map((m) => [m[1]!, m[2]!]),
    );
    const deps = directDependencies();
    const missing = [...deps].filter(([name, d]) => rows.get(name) !== [...d.versions][0]).map(([n, d]) => `${n}@${[...d.versions][0]}`);
    expect(missing, "add or update their rows in docs/dependencies.md").toEqual([]);
    const stale = [...rows.keys()].filter((name) => !deps.has(name));
    expect(stale, "rows for packages no workspace depends on any more").toEqual([]);
  });

  it("runs no audit command in .ci/run or any package script (the registry here answers audit with 405)", () => {
    const ciRun = readFileSync(path.join(REPO_ROOT, ".ci/run"), "utf8");
    const commands = [
      ...ciRun.split("\n").filter((l) => !l.trim().startsWith("#")),
      ...manifests.flatMap((m) => Object.values(m.scripts ?? {})),
    ];
    expect(commands.filter((c) => /\baudit\b/.test(c))).toEqual([]);
    expect(ciRun).toMatch(/install --frozen-lockfile/); // the lockfile, not the registry's latest, decides what is installed
  });
});
