import { describe, expect, it } from "vitest";
import * as pipelineAttributes from "@tracelane/pipeline";
import * as tracingAttributes from "@tracelane/tracing/attributes";
import { RENAMED_ATTRIBUTES, withCurrentNames } from "@tracelane/tracing/attributes";
import { REGISTRY_ATTRIBUTES, registryProblem } from "./registry-attributes.js";

/** Every attribute name our modules define (their ATTR_* string constants). */
const defined = (mod: Record<string, unknown>) =>
  Object.entries(mod).flatMap(([name, value]) => (name.startsWith("ATTR_") && typeof value === "string" ? [{ name, value }] : []));
const ALL = [...defined(tracingAttributes), ...defined(pipelineAttributes)];

describe("attribute names: the registry's names, or ours under tracelane.*", () => {
  it("defines only registry attributes (checked in from the official registry) and tracelane.* ones", () => {
    expect(ALL.length).toBeGreaterThan(60);
    const strays = ALL.filter(({ value }) => !value.startsWith("tracelane.") && !(value in REGISTRY_ATTRIBUTES));
    expect(strays, "attributes in a namespace we do not own that the registry does not define").toEqual([]);
  });

  it("no longer writes the three names we had invented inside reserved namespaces, and reads them as the new ones", () => {
    const values = new Set(ALL.map((a) => a.value));
    for (const [old, current] of Object.entries(RENAMED_ATTRIBUTES)) {
      expect(values.has(old), old).toBe(false);
      expect(current).toMatch(/^tracelane\./);
      expect(old in REGISTRY_ATTRIBUTES).toBe(false);
    }
    expect(Object.keys(RENAMED_ATTRIBUTES).sort()).toEqual([
      "gen_ai.usage.cost",
      "messaging.bullmq.job.attempt",
      "messaging.queue.wait_ms",
    ]);
    // An old sender's span reads as a new one's; a new name already set wins over an old one.
    expect(withCurrentNames({ "gen_ai.usage.cost": 0.5, "messaging.queue.wait_ms": 3, "messaging.system": "bullmq" })).toEqual({
      "tracelane.usage.cost_usd": 0.5,
      "tracelane.queue.wait_ms": 3,
      "messaging.system": "bullmq",
    });
    expect(withCurrentNames({ "messaging.bullmq.job.attempt": 1, "tracelane.job.attempt": 2 })).toEqual({ "tracelane.job.attempt": 2 });
  });

  it("finds a registry attribute with the wrong type, an unknown one in a reserved namespace, and lets ours pass", () => {
    expect(registryProblem("server.port", 8080)).toBeUndefined();
    expect(registryProblem("server.port", "8080")).toMatch(/server\.port is int in the registry, not string/);
    expect(registryProblem("gen_ai.response.finish_reasons", ["stop"])).toBeUndefined();
    expect(registryProblem("gen_ai.response.finish_reasons", "stop")).toMatch(/string\[\]/);
    expect(registryProblem("gen_ai.usage.cost", 0.1)).toMatch(/not in the registry/);
    expect(registryProblem("tracelane.usage.cost_usd", 0.1)).toBeUndefined();
  });
});
