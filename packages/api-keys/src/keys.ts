import { createHash, timingSafeEqual } from "node:crypto";
import { readFileSync } from "node:fs";

export const ROLES = ["admin", "member"] as const;
export type Role = (typeof ROLES)[number];

/** Who is calling: never the key itself. `id` is stable and safe to store and log (a hash prefix). */
export interface Caller {
  id: string;
  name: string;
  role: Role;
}

interface StoredKey extends Caller {
  digest: Buffer;
}

/** The shortest key accepted: shorter ones are guessable. */
export const MIN_KEY_CHARS = 16;
const KEY_SHAPE = /^[\x21-\x7e]+$/;

const digestOf = (key: string) => createHash("sha256").update(key, "utf8").digest();
/** `key_` + 16 hex characters of the key's SHA-256: identifies a key in records and logs without revealing it. */
export const keyIdOf = (key: string) => `key_${digestOf(key).toString("hex").slice(0, 16)}`;

/** Thrown at boot for a bad key list; the message names the variable and the entry (never the key). */
export class ApiKeyConfigError extends Error {
  override readonly name = "ApiKeyConfigError";
}

/**
 * One entry: `<key> [name] [role]`, separated by spaces. The role is `admin` or `member` (default
 * `member`: least privilege; give at least one key `admin` to see every research and /admin).
 */
function parseEntry(entry: string, where: string): StoredKey {
  const [key = "", ...rest] = entry.trim().split(/\s+/);
  if (key.length < MIN_KEY_CHARS || !KEY_SHAPE.test(key)) {
    throw new ApiKeyConfigError(
      `${where}: a key must be at least ${MIN_KEY_CHARS} printable characters without spaces or commas (got ${key.length} characters). Generate one with: openssl rand -hex 24`,
    );
  }
  let name: string | undefined;
  let role: Role = "member";
  for (const word of rest) {
    if ((ROLES as readonly string[]).includes(word)) role = word as Role;
    else if (name === undefined && /^[A-Za-z0-9_.@-]{1,64}$/.test(word)) name = word;
    else
      throw new ApiKeyConfigError(
        `${where}: "${word.slice(0, 64)}" is neither a name (1-64 of [A-Za-z0-9_.@-]) nor a role (${ROLES.join(" or ")}). The shape is: <key> [name] [role]`,
      );
  }
  const id = keyIdOf(key);
  return { id, name: name ?? id, role, digest: digestOf(key) };
}

export type Authentication = { outcome: "none" } | { outcome: "invalid"; reason: string } | { outcome: "ok"; caller: Caller };

/** The configured keys, held only as SHA-256 digests. */
export class ApiKeys {
  private constructor(private readonly keys: readonly StoredKey[]) {}

  /** `API_KEYS` (comma-separated entries) and the lines of `API_KEYS_FILE` (`#` starts a comment), together. */
  static fromEnv(env: { API_KEYS?: string | undefined; API_KEYS_FILE?: string | undefined }): ApiKeys {
    const keys: StoredKey[] = [];
    if (env.API_KEYS?.trim()) {
      env.API_KEYS.split(",").forEach((entry, i) => {
        if (entry.trim()) keys.push(parseEntry(entry, `API_KEYS entry ${i + 1}`));
      });
    }
    if (env.API_KEYS_FILE?.trim()) {
      let text: string;
      try {
        text = readFileSync(env.API_KEYS_FILE, "utf8");
      } catch (err) {
        throw new ApiKeyConfigError(`API_KEYS_FILE: cannot read ${env.API_KEYS_FILE}: ${(err as Error).message}`, { cause: err });
      }
      text.split(/\r?\n/).forEach((line, i) => {
        const entry = line.replace(/#.*$/, "").trim();
        if (entry) keys.push(parseEntry(entry, `API_KEYS_FILE ${env.API_KEYS_FILE} line ${i + 1}`));
      });
    }
    const seen = new Set<string>();
    for (const k of keys) {
      if (seen.has(k.id)) throw new ApiKeyConfigError(`API_KEYS / API_KEYS_FILE: the key ${k.id} (${k.name}) is listed twice`);
      seen.add(k.id);
    }
    return new ApiKeys(keys);
  }

  static none(): ApiKeys {
    return new ApiKeys([]);
  }

  /** False when no key is configured: the service runs open (the api then binds to 127.0.0.1 unless told otherwise). */
  get enabled(): boolean {
    return this.keys.length > 0;
  }

  get size(): number {
    return this.keys.length;
  }

  get hasAdmin(): boolean {
    return this.keys.some((k) => k.role === "admin");
  }

  /** The caller a key belongs to. Compares against every stored digest in constant time (no early exit). */
  verify(key: string): Caller | undefined {
    const digest = digestOf(key);
    let found: StoredKey | undefined;
    for (const k of this.keys) {
      if (timingSafeEqual(k.digest, digest) && found === undefined) found = k;
    }
    return found && { id: found.id, name: found.name, role: found.role };
  }

  /**
   * An `Authorization` header: `Bearer <key>`, or `Basic` with the key as the password (what a browser
   * sends for /admin after its login prompt; the user name is ignored).
   */
  authenticate(header: string | undefined): Authentication {
    if (header === undefined || header.trim() === "") return { outcome: "none" };
    const m = /^\s*(Bearer|Basic)\s+(\S+)\s*$/i.exec(header);
    if (!m) return { outcome: "invalid", reason: "The Authorization header must be: Bearer <api key>." };
    let key = m[2]!;
    if (m[1]!.toLowerCase() === "basic") {
      const decoded = Buffer.from(key, "base64").toString("utf8");
      const colon = decoded.indexOf(":");
      if (colon < 0) return { outcome: "invalid", reason: "Basic credentials must be user:key (the user name is ignored)." };
      key = decoded.slice(colon + 1);
    }
    const caller = this.verify(key);
    return caller ? { outcome: "ok", caller } : { outcome: "invalid", reason: "The API key is not known." };
  }
}
