import { randomBytes } from "node:crypto";
import { writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, expect, inject, it } from "vitest";
import { spawnService } from "@tracelane/testkit";

/**
 * Where the real api entrypoint listens depending on API keys, and how a bad key configuration
 * stops it: one plain line naming the variable (never the key), exit 1.
 */

const base = () => ({
  OTEL_SDK_DISABLED: "true",
  LOG_FORMAT: "json",
  REDIS_URL: inject("redisUrl"),
  PORT: "0",
  // Blank means unset: whatever the shell running the tests has.
  HOST: "",
  API_KEYS: "",
  API_KEYS_FILE: "",
  ALLOW_UNAUTHENTICATED: "",
});

interface LogLine {
  msg?: string;
  level?: number | string;
  host?: string;
  port?: number;
}

const jsonLines = (output: string): LogLine[] =>
  output
    .split("\n")
    .filter((l) => l.startsWith("{"))
    .map((l) => JSON.parse(l) as LogLine);

/** Boot the api until it listens; return its log lines and stop it. */
async function bootUntilListening(env: Record<string, string>): Promise<LogLine[]> {
  const proc = spawnService("api", "services/api/src/index.ts", { ...base(), ...env });
  try {
    await proc.waitForOutput(/"msg":"api listening"/, 90_000);
    return jsonLines(proc.output());
  } finally {
    await proc.stop();
  }
}

async function bootFailure(env: Record<string, string>): Promise<{ code: number | null; lines: string[] }> {
  const proc = spawnService("api", "services/api/src/index.ts", { ...base(), ...env });
  const code = await proc.exited;
  return { code, lines: proc.output().trim().split("\n") };
}

const NO_KEYS_WARNING = /no API keys configured/;

describe("the api's address", () => {
  it("without keys listens on 127.0.0.1 by default and warns once that it runs without authentication", async () => {
    const lines = await bootUntilListening({});
    expect(lines.find((l) => l.msg === "api listening")?.host).toBe("127.0.0.1");
    expect(lines.filter((l) => NO_KEYS_WARNING.test(l.msg ?? ""))).toHaveLength(1);
  }, 120_000);

  it("without keys refuses another address, naming HOST, API_KEYS and ALLOW_UNAUTHENTICATED", async () => {
    const { code, lines } = await bootFailure({ HOST: "0.0.0.0" });
    expect(code).toBe(1);
    expect(lines.at(-1)).toMatch(/^api: cannot start: HOST: 0\.0\.0\.0 is reachable from other machines, but no API key is configured/);
    expect(lines.at(-1)).toMatch(/Set API_KEYS .*HOST=127\.0\.0\.1.*ALLOW_UNAUTHENTICATED=true/);
  }, 120_000);

  it("without keys listens on another address when ALLOW_UNAUTHENTICATED=true, still warning", async () => {
    const lines = await bootUntilListening({ HOST: "0.0.0.0", ALLOW_UNAUTHENTICATED: "true" });
    expect(lines.find((l) => l.msg === "api listening")?.host).toBe("0.0.0.0");
    expect(lines.filter((l) => NO_KEYS_WARNING.test(l.msg ?? ""))).toHaveLength(1);
  }, 120_000);

  it("with keys listens on any address without a warning, and logs no key", async () => {
    const key = randomBytes(20).toString("hex");
    const proc = spawnService("api", "services/api/src/index.ts", {
      ...base(),
      HOST: "0.0.0.0",
      API_KEYS: `${key} ops admin`,
      LOG_LEVEL: "debug",
    });
    try {
      await proc.waitForOutput(/"msg":"api listening"/, 90_000);
      const port = jsonLines(proc.output()).find((l) => l.msg === "api listening")!.port!;
      // A refused request and an accepted one: neither the key nor the header shows up in the output.
      expect((await fetch(`http://127.0.0.1:${port}/v1/research`, { headers: { authorization: `Bearer ${key}x` } })).status).toBe(401);
      expect((await fetch(`http://127.0.0.1:${port}/v1/research`, { headers: { authorization: `Bearer ${key}` } })).status).toBe(200);
    } finally {
      await proc.stop();
    }
    const output = proc.output();
    expect(jsonLines(output).find((l) => l.msg === "api listening")?.host).toBe("0.0.0.0");
    expect(output).not.toMatch(NO_KEYS_WARNING);
    expect(output).not.toContain(key);
  }, 120_000);
});

describe("a bad key configuration", () => {
  it("exits 1 naming API_KEYS and the entry, without the key", async () => {
    const { code, lines } = await bootFailure({ API_KEYS: `${"k".repeat(40)} ops admin, short-key` });
    expect(code).toBe(1);
    expect(lines).toEqual([
      "api: cannot start: API_KEYS entry 2: a key must be at least 16 printable characters without spaces or commas (got 9 characters). Generate one with: openssl rand -hex 24",
    ]);
  }, 120_000);

  it("exits 1 naming API_KEYS_FILE when it cannot be read, or a line of it is wrong", async () => {
    const missing = path.join(os.tmpdir(), `tracelane-no-such-keys-${randomBytes(4).toString("hex")}`);
    const unreadable = await bootFailure({ API_KEYS_FILE: missing });
    expect(unreadable.code).toBe(1);
    expect(unreadable.lines.at(-1)).toMatch(new RegExp(`^api: cannot start: API_KEYS_FILE: cannot read ${missing}: ENOENT`));

    const file = path.join(os.tmpdir(), `tracelane-keys-${randomBytes(4).toString("hex")}`);
    writeFileSync(file, `# operators\n${"a".repeat(32)} ops admin\n${"b".repeat(32)} bob owner\n`);
    const wrong = await bootFailure({ API_KEYS_FILE: file });
    expect(wrong.code).toBe(1);
    expect(wrong.lines.at(-1)).toBe(
      `api: cannot start: API_KEYS_FILE ${file} line 3: "owner" is neither a name (1-64 of [A-Za-z0-9_.@-]) nor a role (admin or member). The shape is: <key> [name] [role]`,
    );
    expect(wrong.lines.join("\n")).not.toContain("b".repeat(32));
  }, 120_000);
});
