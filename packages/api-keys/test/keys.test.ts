import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { ApiKeyConfigError, ApiKeys, keyIdOf } from "@tracelane/api-keys";

const ADMIN = "admin-key-0123456789abcdef";
const MEMBER = "member-key-0123456789abcdef";

describe("API keys", () => {
  it("reads API_KEYS entries with optional name and role; a key without a role is a member", () => {
    const keys = ApiKeys.fromEnv({ API_KEYS: `${ADMIN} ops admin, ${MEMBER}` });
    expect(keys.enabled).toBe(true);
    expect(keys.verify(ADMIN)).toEqual({ id: keyIdOf(ADMIN), name: "ops", role: "admin" });
    expect(keys.verify(MEMBER)).toEqual({ id: keyIdOf(MEMBER), name: keyIdOf(MEMBER), role: "member" });
    expect(keys.verify("not-a-configured-key-000")).toBeUndefined();
  });

  it("reads API_KEYS_FILE one key per line, with comments and blank lines, together with API_KEYS", () => {
    const dir = mkdtempSync(path.join(tmpdir(), "tl-keys-"));
    const file = path.join(dir, "keys");
    writeFileSync(file, `# team keys\n${MEMBER} alice member\n\n${ADMIN} root admin # on-call\n`);
    const keys = ApiKeys.fromEnv({ API_KEYS_FILE: file, API_KEYS: "third-key-0123456789abcdef carol" });
    expect(keys.size).toBe(3);
    expect(keys.verify(MEMBER)?.name).toBe("alice");
    expect(keys.verify(ADMIN)?.role).toBe("admin");
    expect(keys.verify("third-key-0123456789abcdef")?.name).toBe("carol");
  });

  it("refuses short keys, unknown words and duplicates at boot, naming where and never echoing the key", () => {
    const tryEnv = (env: Record<string, string>) => {
      try {
        ApiKeys.fromEnv(env);
        return "accepted";
      } catch (err) {
        expect(err).toBeInstanceOf(ApiKeyConfigError);
        return (err as Error).message;
      }
    };
    const short = tryEnv({ API_KEYS: `${ADMIN},short-secret` });
    expect(short).toMatch(/API_KEYS entry 2: a key must be at least 16/);
    expect(short).not.toContain("short-secret");
    expect(tryEnv({ API_KEYS: `${ADMIN} ops superuser` })).toMatch(/"superuser" is neither a name .* nor a role/);
    expect(tryEnv({ API_KEYS: `${ADMIN} a,${ADMIN} b` })).toMatch(/listed twice/);
    expect(tryEnv({ API_KEYS_FILE: "/nonexistent/keys" })).toMatch(/API_KEYS_FILE: cannot read \/nonexistent\/keys/);
  });

  it("authenticates Bearer and Basic (key as password) headers and tells none from invalid", () => {
    const keys = ApiKeys.fromEnv({ API_KEYS: `${ADMIN} ops admin` });
    expect(keys.authenticate(undefined)).toEqual({ outcome: "none" });
    expect(keys.authenticate(`Bearer ${ADMIN}`)).toMatchObject({ outcome: "ok", caller: { name: "ops", role: "admin" } });
    expect(keys.authenticate(`bearer   ${ADMIN} `)).toMatchObject({ outcome: "ok" });
    const basic = Buffer.from(`anyone:${ADMIN}`).toString("base64");
    expect(keys.authenticate(`Basic ${basic}`)).toMatchObject({ outcome: "ok", caller: { role: "admin" } });
    expect(keys.authenticate(`Bearer ${MEMBER}`)).toEqual({ outcome: "invalid", reason: "The API key is not known." });
    expect(keys.authenticate(ADMIN).outcome).toBe("invalid");
    expect(keys.authenticate(`Basic ${Buffer.from(ADMIN).toString("base64")}`).outcome).toBe("invalid");
  });

  it("keeps no key in memory, only digests (a heap dump of the object shows no key)", () => {
    const keys = ApiKeys.fromEnv({ API_KEYS: `${ADMIN} ops admin` });
    expect(JSON.stringify(keys)).not.toContain(ADMIN);
    expect(JSON.stringify(keys.verify(ADMIN))).not.toContain(ADMIN);
  });
});
