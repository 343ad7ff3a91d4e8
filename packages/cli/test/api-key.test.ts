import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { isolatedRun, ONE_OF_EACH, startStack, type Stack } from "@tracelane/launcher";

/**
 * Against an api with API keys, the CLI sends TRACELANE_API_KEY as `Authorization: Bearer <key>` on
 * every request, the event stream of `research --wait` included, and a refused key ends the command
 * with exit code 6 and a message that says which variable to set.
 */

const BIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../bin/tracelane.mjs");
const KEY = randomBytes(20).toString("hex");
const OTHER_MEMBER = randomBytes(20).toString("hex");

let stack: Stack;

function tracelane(args: string[], key: string | undefined): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const env = { ...process.env, TRACELANE_URL: stack.apiUrl, TRACELANE_API_KEY: key };
    if (key === undefined) delete env.TRACELANE_API_KEY;
    execFile(process.execPath, [BIN, ...args], { env, timeout: 60_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === "number" ? err.code : -1) : 0, stdout, stderr });
    });
  });
}

beforeAll(async () => {
  const { env } = isolatedRun("cli-key");
  stack = await startStack({
    redisUrl: inject("redisUrl"),
    replicas: { ...ONE_OF_EACH, "trace-collector": 0 },
    env: { ...env, LOG_LEVEL: "warn", BREAKER_THRESHOLD: "1000" },
    serviceEnv: { api: { API_KEYS: `${KEY} cli-user member, ${OTHER_MEMBER} someone-else member` } },
  });
}, 180_000);

afterAll(async () => {
  await stack?.stop();
});

describe("the CLI with an api that has keys", () => {
  it("without TRACELANE_API_KEY exits 6 saying to set it", async () => {
    const run = await tracelane(["researches"], undefined);
    expect(run.code).toBe(6);
    expect(run.stdout).toBe("");
    expect(run.stderr).toMatch(/^tracelane: the api answered 401 unauthorized: /);
    expect(run.stderr).toContain("the CLI sends TRACELANE_API_KEY as the API key: set it to a key from the api's API_KEYS");
  });

  it("with an unknown key exits 6 without printing the key", async () => {
    const wrong = `${KEY}-not-it`;
    const run = await tracelane(["traces"], wrong);
    expect(run.code).toBe(6);
    expect(run.stderr).toMatch(/401 invalid_api_key/);
    expect(run.stderr).not.toContain(wrong);
  });

  it("sends the key on every request: research --wait follows the event stream to the report, then status and lists", async () => {
    const run = await tracelane(["research", "Why is the sky blue?", "--wait"], KEY);
    // Without the key on the event stream the CLI would fall back to polling and say so on stderr.
    expect(run.stderr).toBe("");
    expect(run.code).toBe(0);
    const id = /^research ([0-9a-f]{32}) submitted/m.exec(run.stdout)![1]!;
    expect((await tracelane(["status", id], KEY)).code).toBe(0);
    const list = await tracelane(["researches", "--json"], KEY);
    expect(list.code).toBe(0);
    expect((JSON.parse(list.stdout) as { researches: { id: string }[] }).researches.map((r) => r.id)).toEqual([id]);
    // Another member's key: the research does not exist for it (exit 4, as for any unknown id).
    const other = await tracelane(["status", id], OTHER_MEMBER);
    expect(other.code).toBe(4);
    expect(other.stderr).toMatch(/404 not_found/);
  }, 90_000);
});
