import { describe, expect, it } from "vitest";
import { z } from "zod";
import { EnvError, envBoolean, envInt, parseEnv } from "@tracelane/runtime";

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
