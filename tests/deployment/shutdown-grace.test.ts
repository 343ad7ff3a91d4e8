import OpenAI from "openai";
import { describe, expect, it } from "vitest";
import { freePort, spawnService } from "@tracelane/testkit";

describe("SHUTDOWN_GRACE_MS", () => {
  it("bounds a shutdown that cannot finish: exit 1 once it is over, saying why", async () => {
    const port = await freePort();
    const sim = spawnService("llm-simulator", "services/llm-simulator/src/index.ts", {
      PORT: String(port),
      HOST: "127.0.0.1",
      LOG_FORMAT: "json",
      OTEL_SDK_DISABLED: "true",
      // Below the 2 s the simulator gives in-flight completions before it cuts them.
      SHUTDOWN_GRACE_MS: "300",
      LLM_SIM_DIRECTIVES: "true",
    });
    try {
      await sim.waitForOutput(/llm-simulator listening/, 60_000);
      const client = new OpenAI({ apiKey: "sk-simulator", baseURL: `http://127.0.0.1:${port}/v1`, maxRetries: 0 });
      const hung = client.chat.completions
        .create({ model: "gpt-4.1", messages: [{ role: "user", content: "[[sim:fault=hang]]" }] })
        .catch((e: unknown) => e);
      await new Promise((r) => setTimeout(r, 200));
      expect(await sim.stop("SIGTERM")).toBe(1);
      expect(sim.output()).toMatch(/"graceMs":300,"msg":"shutdown grace period exceeded \(SHUTDOWN_GRACE_MS\), exiting"/);
      expect(sim.output()).not.toMatch(/"msg":"shutdown complete"/);
      await hung;
    } finally {
      await sim.stop("SIGKILL");
    }
  }, 90_000);
});
