import { describe, expect, it } from "vitest";
import { z } from "zod";
import { bootFailureLine, EnvError, envBoolean, envInt, parseEnv, redisEnvShape, serviceEnvShape } from "@tracelane/runtime";

const schema = z.object({
  PORT: envInt(3000, { min: 1, max: 65535 }),
  FEATURE: envBoolean(false),
});

describe("parseEnv", () => {
  it("applies defaults and coerces numbers and booleans", () => {
    expect(parseEnv(schema, {})).toEqual({ PORT: 3000, FEATURE: false });
    expect(parseEnv(schema, { PORT: "8080", FEATURE: "yes" })).toEqual({ PORT: 8080, FEATURE: true });
  });

  it("fails with a message that names the variable and the value it got", () => {
    let error: unknown;
    try {
      parseEnv(schema, { PORT: "eighty", FEATURE: "maybe" });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(EnvError);
    expect((error as EnvError).message).toMatch(/PORT: .*got "eighty"/);
    expect((error as EnvError).message).toMatch(/FEATURE: .*got "maybe"/);
  });
});

describe("blank values", () => {
  it("are unset: the default applies instead of a coerced 0 or a rejection", () => {
    const withOptional = z.object({ PORT: envInt(3000, { min: 1, max: 65535 }), NAME: z.string().optional() });
    expect(parseEnv(withOptional, { PORT: "", NAME: "  " })).toEqual({ PORT: 3000 });
  });
});

describe("bootFailureLine", () => {
  it("is one line naming each bad variable, its value and what is allowed", () => {
    const err = (() => {
      try {
        parseEnv(z.object({ LOG_LEVEL: serviceEnvShape.LOG_LEVEL, PORT: envInt(3000, { min: 0, max: 65535 }) }), {
          LOG_LEVEL: "loud",
          PORT: "http",
        });
      } catch (e) {
        return e;
      }
    })();
    expect(bootFailureLine("api", err)).toBe(
      'api: cannot start: LOG_LEVEL: must be one of fatal, error, warn, info, debug, trace, silent (got "loud"); ' +
        'PORT: must be a whole number from 0 to 65535 (got "http")',
    );
  });
});

describe("REDIS_CLUSTER_NODES", () => {
  const redisSchema = z.object(redisEnvShape);

  it("is unset by default (REDIS_URL is the one Redis) and parses seeds into hosts and ports", () => {
    expect(parseEnv(redisSchema, {}).REDIS_CLUSTER_NODES).toBeUndefined();
    expect(parseEnv(redisSchema, { REDIS_CLUSTER_NODES: " 10.0.0.1:7000, redis-b:7001,[::1]:7002" }).REDIS_CLUSTER_NODES).toEqual([
      { host: "10.0.0.1", port: 7000 },
      { host: "redis-b", port: 7001 },
      { host: "::1", port: 7002 },
    ]);
  });

  it("refuses what is not a list of host:port, naming the variable and the form it takes", () => {
    for (const bad of ["10.0.0.1", "redis://a:7000", "a:7000,,b:7001", "a:99999", "a:70x0"]) {
      expect(() => parseEnv(redisSchema, { REDIS_CLUSTER_NODES: bad }), bad).toThrow(
        /REDIS_CLUSTER_NODES: must be a comma-separated list of host:port seed nodes/,
      );
    }
  });
});
